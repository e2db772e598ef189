// Step 4, in the folder of steps 2 and 3: keys/jwks.json is what the app trusts, globex.jwt the token it verifies.
// Run it with `npx tsx check.ts` (Node 20 runs TypeScript through tsx; the project is ESM, "type": "module").
import { readFileSync } from 'node:fs'
import { createEntitlementVerifier, decide } from 'entitle'

// Once, at start-up: the keys you trust (a JWK Set, or its URL) and what a token must say about its origin.
const verifier = createEntitlementVerifier({
  keys: JSON.parse(readFileSync('keys/jwks.json', 'utf8')),
  issuer: 'https://license.example.com',
  audience: 'my-app',
})

const token = readFileSync('globex.jwt', 'utf8').trim()
const entitlements = await verifier.verify(token)
export const seats = decide(entitlements, 'seats', { usage: 9, amount: 1 }, Date.now())
console.log(
  seats.allowed
    ? `${entitlements.subject} may invite one more: ${seats.used} of ${seats.limit} seats in use`
    : `${seats.reason}: ${seats.used}/${seats.limit}, upgrade at ${seats.upgrade?.url}`,
)
