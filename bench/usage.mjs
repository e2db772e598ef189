// The meter's hot path: record() calls, aggregated, for 1,000 customers and 20 metrics, beside a bare nested Map
// increment on the same keys; and the memory the meter holds after a million records. Customer and metric are
// drawn independently at random (from a fixed seed), so every one of the 20,000 lines is touched, as in an app.
import { createEntitlements, createTestIssuer, metering } from './dist.mjs'
import { compare } from './harness.mjs'

const CUSTOMERS = 1000
const METRICS = 20

export async function usageRows() {
  const issuer = await createTestIssuer({ issuer: 'https://license.bench', audience: 'bench' })
  const resetsAt = Math.floor(Date.now() / 1000) + 10 * 86_400
  const metrics = Array.from({ length: METRICS }, (_, i) => `metric-${i}`)
  const features = Object.fromEntries(
    metrics.map((name) => [name, { cap: { limit: 1e12, period: 'month', used: 0, resetsAt } }]),
  )
  const subjects = Array.from({ length: CUSTOMERS }, (_, i) => `customer-${i}`)
  // The license server, in-process: tokens with a monthly cap on every metric, and a usage endpoint that accepts.
  const fetchInProcess = async (input) => {
    const url = input instanceof Request ? input.url : String(input)
    if (url.endsWith('/v1/revocations')) return Response.json({ revoked: [] })
    if (url.endsWith('/v1/usage')) return Response.json({ accepted: 0, at: Date.now() })
    const subject = decodeURIComponent(url.split('/').pop())
    return new Response(
      await issuer.issue({ plan: { id: 'metered' }, features }, { subject, expiresInSec: 3600 }),
    )
  }
  const makeClient = () =>
    createEntitlements({
      metering,
      server: { url: 'https://license.bench', revocationIntervalMs: 0 },
      keys: issuer.jwks,
      issuer: 'https://license.bench',
      audience: 'bench',
      platform: { fetch: fetchInProcess },
      // One line per customer and metric fits; sending is left to the timer, as in an app between flushes.
      usage: { maxQueuedLines: 50_000, maxBatchLines: 50_000, flushIntervalMs: 1000 },
    })

  const client = makeClient()
  for (let i = 0; i < CUSTOMERS; i += 100)
    await Promise.all(subjects.slice(i, i + 100).map((subject) => client.load(subject)))

  const counts = new Map(subjects.map((subject) => [subject, new Map()]))
  // Keys drawn in advance from a seeded generator: both sides walk the same random sequence, at no cost per call.
  let seed = 20_000
  const random = () => {
    seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0
    return seed / 4_294_967_296
  }
  const KEYS = 1 << 16
  const keySubjects = Array.from({ length: KEYS }, () => subjects[Math.floor(random() * CUSTOMERS)])
  const keyMetrics = Array.from({ length: KEYS }, () => metrics[Math.floor(random() * METRICS)])
  let i = 0
  const BATCH = 100
  const bare = () => {
    for (let n = 0; n < BATCH; n++, i = (i + 1) & (KEYS - 1)) {
      const perMetric = counts.get(keySubjects[i])
      const metric = keyMetrics[i]
      perMetric.set(metric, (perMetric.get(metric) ?? 0) + 1)
    }
  }
  const context = { subject: '' }
  const ours = () => {
    for (let n = 0; n < BATCH; n++, i = (i + 1) & (KEYS - 1)) {
      context.subject = keySubjects[i]
      client.record(keyMetrics[i], 1, context)
    }
  }
  const row = await compare(
    `record(), aggregated, random of ${CUSTOMERS} customers x ${METRICS} metrics vs Map`,
    ours,
    bare,
    {
      ms: 200,
    },
  )
  const perOperation = { ...row, ours: row.ours * BATCH, baseline: row.baseline * BATCH }
  await client.flush()
  const stats = client.stats().usage
  if (stats.dropped !== 0 || stats.pending !== 0 || stats.recorded === 0) {
    throw new Error(`the meter did not keep up: ${JSON.stringify(stats)}`)
  }
  await client.close()

  // Memory: a fresh client, a million records, nothing sent yet (the timer has not fired).
  const fresh = makeClient()
  for (let i = 0; i < CUSTOMERS; i += 100)
    await Promise.all(subjects.slice(i, i + 100).map((subject) => fresh.load(subject)))
  globalThis.gc?.()
  const before = process.memoryUsage().heapUsed
  for (let n = 0; n < 1_000_000; n++) {
    context.subject = subjects[n % CUSTOMERS]
    fresh.record(metrics[Math.floor(n / CUSTOMERS) % METRICS], 1, context)
  }
  globalThis.gc?.()
  const held = process.memoryUsage().heapUsed - before
  const lines = fresh.stats().usage.pending
  await fresh.close({ deadlineMs: 0 })
  return { row: perOperation, held, lines }
}
