// A per-resource cap (token format v2) checked for a resource, beside the same check of a cap that is not per
// resource, on one customer with a usage meter: what naming the resource costs a check (issue 28 aims at 1.5x).
import { createEntitlements, createTestIssuer, metering } from './dist.mjs'
import { compare } from './harness.mjs'

export async function resourceRow() {
  const issuer = await createTestIssuer({ issuer: 'https://license.bench', audience: 'bench' })
  const cap = { limit: 1e12, period: 'total', used: 0 }
  const resources = Object.fromEntries(
    Array.from({ length: 100 }, (_, i) => [`repo-${i}`, { cap: { used: i } }]),
  )
  const token = await issuer.issue(
    {
      plan: { id: 'ci' },
      features: {
        calls: { cap },
        builds: { cap, per: { kind: 'repository', cap: { limit: 1e9 }, resources } },
      },
    },
    { subject: 'acme', expiresInSec: 3600 },
  )
  const client = createEntitlements({
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
  })
  await client.load('acme')
  // Usage in flight for both, so each check adds what the meter counted (as in an app that records).
  client.record('calls', 5, { subject: 'acme' })
  client.record('builds', 5, { subject: 'acme', resource: 'repository:repo-7' })
  const BATCH = 100
  let sink = 0
  const plain = { subject: 'acme', amount: 1 }
  const named = { subject: 'acme', amount: 1, resource: 'repository:repo-7' }
  const withoutResource = () => {
    for (let n = 0; n < BATCH; n++) if (client.checkSync('calls', plain).allowed) sink++
  }
  const withResource = () => {
    for (let n = 0; n < BATCH; n++) if (client.checkSync('builds', named).allowed) sink++
  }
  const row = await compare(
    'checkSync of a per-resource cap, with the resource vs a cap without',
    withResource,
    withoutResource,
    { ms: 200 },
  )
  await client.close({ deadlineMs: 100 })
  if (sink === 0) throw new Error('nothing allowed')
  return { ...row, ours: row.ours * BATCH, baseline: row.baseline * BATCH }
}
