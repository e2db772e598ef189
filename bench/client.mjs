// The client's hot path: checks answered from a warm cache of 10,000 customers, beside the least any in-memory
// check can do (a Map lookup and an expiry compare) on the same keys, and the memory the cache holds per customer.
import { createEntitlements, createTestIssuer } from './dist.mjs'
import { compare } from './harness.mjs'

const CUSTOMERS = 10_000

export async function clientRows() {
  const issuer = await createTestIssuer({ issuer: 'https://license.bench', audience: 'bench' })
  const ent = {
    plan: { id: 'team' },
    features: {
      export: true,
      seats: { limit: 25 },
      'api-calls': { cap: { limit: 100_000, period: 'total', used: 10 } },
    },
  }
  // The license server, in-process: no network in a benchmark.
  const fetchToken = async (input) => {
    const url = input instanceof Request ? input.url : String(input)
    if (url.endsWith('/v1/revocations')) return Response.json({ revoked: [] })
    const subject = decodeURIComponent(url.split('/').pop())
    return new Response(await issuer.issue(ent, { subject, expiresInSec: 3600 }))
  }
  const subjects = Array.from({ length: CUSTOMERS }, (_, i) => `customer-${i}`)

  globalThis.gc?.()
  const before = process.memoryUsage().heapUsed
  const client = createEntitlements({
    server: { url: 'https://license.bench', revocationIntervalMs: 0 },
    keys: issuer.jwks,
    issuer: 'https://license.bench',
    audience: 'bench',
    maxSubjects: CUSTOMERS,
    platform: { fetch: fetchToken },
  })
  for (let i = 0; i < CUSTOMERS; i += 200)
    await Promise.all(subjects.slice(i, i + 200).map((subject) => client.load(subject)))
  globalThis.gc?.()
  const perCustomer = (process.memoryUsage().heapUsed - before) / CUSTOMERS

  const now = Date.now()
  const map = new Map(
    subjects.map((subject) => [subject, { expiresAt: now + 3_600_000, features: new Set(['export']) }]),
  )
  let i = 0
  let sink = 0
  // Each call does BATCH operations, on both sides, so the harness's own per-call cost is spread equally thin.
  const BATCH = 100
  // An expiry compare needs the time: the baseline reads the clock per check, as any real check must.
  const bare = () => {
    for (let n = 0; n < BATCH; n++) {
      const entry = map.get(subjects[i++ % CUSTOMERS])
      if (entry !== undefined && entry.expiresAt > Date.now() && entry.features.has('export')) sink++
    }
  }
  const context = { subject: '' }
  const sync = () => {
    for (let n = 0; n < BATCH; n++) {
      context.subject = subjects[i++ % CUSTOMERS]
      if (client.checkSync('export', context).allowed) sink++
    }
  }
  const async = async () => {
    for (let n = 0; n < BATCH; n++) {
      context.subject = subjects[i++ % CUSTOMERS]
      if ((await client.check('export', context)).allowed) sink++
    }
  }
  const perOperation = (row) => ({ ...row, ours: row.ours * BATCH, baseline: row.baseline * BATCH })
  const rows = [
    perOperation(
      await compare(`checkSync, warm cache of ${CUSTOMERS} customers vs Map.get`, sync, bare, { ms: 200 }),
    ),
    perOperation(
      await compare(`check (async), warm cache of ${CUSTOMERS} vs Map.get`, async, bare, { ms: 200 }),
    ),
  ]
  const stats = client.stats()
  if (sink === 0 || stats.cached !== CUSTOMERS || stats.misses !== 0) {
    throw new Error(`the cache was not warm: ${JSON.stringify({ ...stats, decisions: undefined })}`)
  }
  await client.close()
  return { rows, perCustomer }
}
