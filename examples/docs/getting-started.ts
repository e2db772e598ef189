import { createEntitlementVerifier, decide } from 'entitle'
import { createTestIssuer } from 'entitle/testing'

// The issuer from step 3, in-process.
const issuer = await createTestIssuer({ issuer: 'https://license.example.com', audience: 'my-app' })
const token = await issuer.issue(
  {
    plan: { id: 'team' },
    features: { export: true, seats: { limit: 10 } },
    upgrade: { url: 'https://example.com/up' },
  },
  { subject: 'globex' },
)

// Step 4.
const verifier = createEntitlementVerifier({
  keys: issuer.jwks,
  issuer: 'https://license.example.com',
  audience: 'my-app',
})
const entitlements = await verifier.verify(token)
const seats = decide(entitlements, 'seats', { usage: 9, amount: 1 }, Date.now())
if (!seats.allowed)
  console.log(`${seats.reason}: ${seats.used}/${seats.limit}, upgrade at ${seats.upgrade?.url}`)

export { seats }
