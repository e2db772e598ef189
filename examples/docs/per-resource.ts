// A CI product sold per repository, with no server: `entitle/testing` signs the license in memory (format v2).
import { createEntitlements } from 'entitle'
import { createTestIssuer } from 'entitle/testing'

const issuer = await createTestIssuer()
const resetsAt = Math.floor(Date.now() / 1000) + 30 * 86_400
// 500 builds a month per repository within 5,000 for the account; "mono" bought 2,000; SSO on one workspace only.
const license = await issuer.issue({
  plan: { id: 'ci-team' },
  features: {
    builds: {
      cap: { limit: 5000, period: 'month', used: 4990, resetsAt },
      per: {
        kind: 'repository',
        cap: { limit: 500 },
        resources: {
          api: { cap: { used: 500 } },
          web: { cap: { used: 120 } },
          mono: { cap: { limit: 2000 } },
        },
      },
    },
    sso: { per: { kind: 'workspace', enabled: false, resources: { 'ws-9': { enabled: true } } } },
  },
})

const entitlements = createEntitlements({ token: license, ...issuer.verifyOptions })
await entitlements.load()
for (const [feature, resource, amount] of [
  ['builds', 'repository:api', 1],
  ['builds', 'repository:web', 1],
  ['builds', 'repository:mono', 20],
  ['builds', undefined, 1],
  ['sso', 'workspace:ws-9', 1],
  ['sso', 'workspace:ws-1', 1],
] as const) {
  const decision = entitlements.checkSync(feature, { resource, amount })
  const levels = decision.resource
  const numbers = levels?.own
    ? ` (repository ${levels.own.used}/${levels.own.limit}${levels.account ? `, account ${levels.account.used}/${levels.account.limit}` : ''})`
    : ''
  console.log(
    `${feature} ${resource ?? '(no resource)'} +${amount}: ${decision.allowed ? 'allowed' : 'denied'}, ${decision.reason}${levels?.deniedBy ? ` by the ${levels.deniedBy}` : ''}${numbers}`,
  )
}
await entitlements.close()
