// consume() and consumeSync() in one process (no fleet): a check and a use in one step, for one customer with a
// metered cap and usage going to the license server, beside the least a check-and-add can do in memory.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEntitlements, createFileStorage, createTestIssuer, metering } from './dist.mjs'
import { compare } from './harness.mjs'

export async function consumeRows() {
  const issuer = await createTestIssuer({ issuer: 'https://license.bench', audience: 'bench' })
  // A cap no run of the bench reaches, so every consume is allowed and adds.
  const token = await issuer.issue(
    { plan: { id: 'team' }, features: { 'api-calls': { cap: { limit: 1e12, period: 'total', used: 0 } } } },
    { subject: 'acme', expiresInSec: 3600 },
  )
  const options = {
    metering,
    server: { url: 'https://license.bench', revocationIntervalMs: 0 },
    keys: issuer.jwks,
    issuer: 'https://license.bench',
    audience: 'bench',
    platform: {
      fetch: async (input) =>
        String(input).endsWith('/v1/usage') ? Response.json({ lines: [] }) : new Response(token),
    },
    usage: { flushIntervalMs: 3_600_000 },
  }
  const client = createEntitlements(options)
  await client.load('acme')
  // The configuration the docs recommend for an app that can be killed: file storage, where consume() writes a
  // cap's reservation (synchronously, for consumeSync) before it grants past it.
  const dir = mkdtempSync(join(tmpdir(), 'entitle-bench-'))
  const durable = createEntitlements({ ...options, storage: createFileStorage(dir) })
  await durable.load('acme')
  // A feature paid in credits (5 a call, from a grant no run of the bench spends), beside the capped one.
  const costedToken = await issuer.issue(
    {
      plan: { id: 'ai' },
      features: { 'ai-completion': true },
      credits: {
        'ai-credits': {
          grants: [{ id: 'pack', remaining: 1e12 }],
          asOf: Date.now() / 1000,
          spent: 0,
          costs: { 'ai-completion': { amount: 5 } },
        },
      },
    },
    { subject: 'acme', expiresInSec: 3600 },
  )
  const costed = createEntitlements({
    metering,
    ...options,
    platform: {
      fetch: async (input) =>
        String(input).endsWith('/v1/usage') ? Response.json({ lines: [] }) : new Response(costedToken),
    },
  })
  await costed.load('acme')
  const context = { subject: 'acme' }
  // Baseline: the customer's record and an expiry compare, then its counter read, compared with the cap and
  // written back: a check and an add, in Maps.
  const customers = new Map([['acme', { expiresAt: Date.now() + 3_600_000, limit: 1e12 }]])
  const used = new Map([['acme api-calls', 0]])
  let sink = 0
  const bare = () => {
    const customer = customers.get('acme')
    if (customer === undefined || customer.expiresAt <= Date.now()) return
    const count = used.get('acme api-calls') ?? 0
    if (count + 1 <= customer.limit) {
      used.set('acme api-calls', count + 1)
      sink++
    }
  }
  const sync = () => {
    if (client.consumeSync('api-calls', context).allowed) sink++
  }
  const syncDurable = () => {
    if (durable.consumeSync('api-calls', context).allowed) sink++
  }
  const syncCosted = () => {
    if (costed.consumeSync('ai-completion', context).allowed) sink++
  }
  const async = async () => {
    if ((await client.consume('api-calls', context)).allowed) sink++
  }
  const rows = [
    await compare('consumeSync() in process, one customer vs Map check-and-add', sync, bare, { ms: 200 }),
    await compare('consume() in process, one customer vs Map check-and-add', async, bare, { ms: 200 }),
    // The cost of a cap that a kill -9 cannot reset (issue: at most 1.5x).
    await compare('consumeSync() with file storage vs without (crash-safe cap)', syncDurable, sync, {
      ms: 200,
    }),
    // Credits (issue 27: within 2x): the balance of live grants less what was spent since the snapshot, priced.
    await compare('consumeSync() of a costed feature vs of a capped one', syncCosted, sync, { ms: 200 }),
  ]
  await costed.close({ deadlineMs: 0 })
  await client.close({ deadlineMs: 0 })
  await durable.close({ deadlineMs: 0 })
  rmSync(dir, { recursive: true, force: true })
  if (sink === 0) throw new Error('nothing consumed')
  return rows
}
