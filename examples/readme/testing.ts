import { checkEntitlement } from 'entitle'
import { createTestIssuer } from 'entitle/testing'

const issuer = await createTestIssuer()
const token = await issuer.issue({ plan: { id: 'pro' }, features: { export: true, seats: { limit: 5 } } })

const decision = await checkEntitlement(token, 'seats', { ...issuer.verifyOptions, context: { usage: 5 } })
console.log(decision.allowed, decision.reason, decision.remaining) // false 'limit_exceeded' 0

export { decision }
