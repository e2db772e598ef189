// A soft cap with a ceiling and usage alerts, with no server: `entitle/testing` signs the license in memory.
import { createEntitlements, metering } from 'entitle'
import { createTestIssuer } from 'entitle/testing'

const issuer = await createTestIssuer()
const resetsAt = Math.floor(Date.now() / 1000) + 30 * 86_400
// 10 API calls included, overage allowed up to 12, alerts at 80% and 100%.
const license = await issuer.issue({
  plan: { id: 'pro' },
  features: {
    'api-calls': {
      cap: { limit: 10, period: 'month', used: 0, resetsAt, soft: true, ceiling: 12, thresholds: [80, 100] },
    },
  },
})

const entitlements = createEntitlements({ metering, token: license, ...issuer.verifyOptions })
entitlements.on('threshold', ({ threshold, used, limit }) =>
  console.log(`alert: ${threshold}% (${used} of ${limit})`),
)

await entitlements.consume('api-calls', { amount: 8 })
await entitlements.consume('api-calls', { amount: 2 })
for (const amount of [1, 5]) {
  const decision = await entitlements.consume('api-calls', { amount })
  console.log(
    `${amount} more: ${decision.allowed ? 'allowed' : 'denied'}, ${decision.reason}, overage ${decision.overage ?? 0}`,
  )
}
await entitlements.close()
