// Compiled by `npm run typecheck`, never run: the public types a user relies on, and the misuse they refuse.
import {
  checkEntitlement,
  createEntitlementVerifier,
  type Decision,
  type DecisionReason,
  decide,
  EntitlementError,
  type EntitlementErrorCode,
  type Entitlements,
  verifyEntitlementToken,
} from 'entitle'
import { createTestIssuer } from 'entitle/testing'

declare const token: string
const options = {
  keys: { kty: 'OKP', crv: 'Ed25519', x: 'x' },
  issuer: 'https://i',
  audience: 'app',
} as const

export async function usage(): Promise<void> {
  const entitlements: Entitlements = await verifyEntitlementToken(token, options)
  const verifier = createEntitlementVerifier({
    ...options,
    algorithms: ['EdDSA', 'ES256'],
    clockToleranceSec: 30,
  })
  const decision: Decision = decide(
    await verifier.verify(token),
    'seats',
    { usage: 3, amount: 1 },
    Date.now(),
  )
  const reason: DecisionReason = decision.reason
  const remaining: number | undefined = decision.remaining
  const fromCheck = await checkEntitlement(token, 'export', {
    ...options,
    context: { roles: ['admin'], region: 'DE' },
  })
  const withVerifier = await checkEntitlement(token, 'export', { verifier, now: () => 0 })
  const issuer = await createTestIssuer({ alg: 'ES256' })
  await issuer.issue({ plan: { id: 'pro' }, features: { export: true, seats: { limit: 5 } } })
  void [
    entitlements.features.get('x')?.limit,
    reason,
    remaining,
    fromCheck.upgrade?.url,
    withVerifier.allowed,
  ]

  try {
    await verifier.verify(token)
  } catch (error) {
    if (error instanceof EntitlementError) {
      const code: EntitlementErrorCode = error.code
      // @ts-expect-error codes are a closed union: a typo does not compile
      const typo: EntitlementErrorCode = 'token_expried'
      void [code, typo]
    }
  }

  // @ts-expect-error HMAC is not an algorithm a verifier can allow
  createEntitlementVerifier({ ...options, algorithms: ['HS256'] })
  // @ts-expect-error issuer and audience are required
  createEntitlementVerifier({ keys: options.keys })
  // @ts-expect-error a decision's reason is a closed union
  const bad: DecisionReason = 'allowed'
  // @ts-expect-error a feature claim has no unknown fields in its type
  await issuer.issue({ features: { x: { limitt: 1 } } })
  void bad
}
