// `checkSync` for one customer with roles in the context, beside issue 31's "Map": a `Map` of `{ enabled,
// expiresAt }` read with an expiry check, on the same key. Roles change an answer only by passing or failing the
// feature's role rule, so the client memoizes one answer for each side: this is the cost of a memoized check with
// roles, the role check included (it runs on every call).
import { createEntitlements, createTestIssuer } from './dist.mjs'
import { compare } from './harness.mjs'
import { realisticEntitlement } from './realistic-token.mjs'

export async function rolesRow() {
  const issuer = await createTestIssuer({ issuer: 'https://license.bench', audience: 'bench' })
  const resetsAt = Math.floor(Date.now() / 1000) + 10 * 86_400
  const token = await issuer.issue(realisticEntitlement(resetsAt), { subject: 'acme', expiresInSec: 86_400 })
  const client = createEntitlements({
    server: { url: 'https://license.bench', revocationIntervalMs: 0 },
    keys: issuer.jwks,
    issuer: 'https://license.bench',
    audience: 'bench',
    platform: { fetch: async () => new Response(token) },
  })
  await client.load('acme')
  // feature-02 is a monthly cap that needs the role admin or member (see realistic-token.mjs).
  const context = { subject: 'acme', roles: ['member'] }
  if (!client.checkSync('feature-02', context).allowed) throw new Error('the role check denied')
  const map = new Map([['feature-02', { enabled: true, expiresAt: Date.now() + 3_600_000 }]])
  const BATCH = 100
  let sink = 0
  const ours = () => {
    for (let n = 0; n < BATCH; n++) if (client.checkSync('feature-02', context).allowed) sink++
  }
  const bare = () => {
    for (let n = 0; n < BATCH; n++) {
      const found = map.get('feature-02')
      if (found?.enabled && found.expiresAt > Date.now()) sink++
    }
  }
  const row = await compare('checkSync, one customer, roles in the context vs Map', ours, bare, { ms: 200 })
  await client.close({ deadlineMs: 100 })
  if (sink === 0) throw new Error('nothing allowed')
  return { ...row, ours: row.ours * BATCH, baseline: row.baseline * BATCH }
}
