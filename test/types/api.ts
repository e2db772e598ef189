// Compiled by `npm run typecheck`, never run: the public types a user relies on, and the misuse they refuse.
import {
  type CloseResult,
  checkEntitlement,
  createEntitlements,
  createEntitlementVerifier,
  type Decision,
  type DecisionReason,
  decide,
  EntitlementError,
  type EntitlementErrorCode,
  type Entitlements,
  type EntitlementsClient,
  type FlushResult,
  featureTerm,
  type Metering,
  metering,
  type UsageLine,
  type UsageOptions,
  type UsageStats,
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
  const feature = entitlements.features.get('x')
  // The customer's term and usage are beside the plan's features, not in them.
  const ends: number | undefined = feature && featureTerm(entitlements, feature).graceEndsAt
  const used: number | undefined = entitlements.usage.get('api-calls')?.used
  const own: number | undefined = feature?.term?.trialEndsAt
  // @ts-expect-error a feature no longer carries the license's term
  void feature?.expiresAt
  // @ts-expect-error a cap no longer carries the customer's usage
  void feature?.cap?.used
  void [
    entitlements.features.get('x')?.limit,
    entitlements.term.expiresAt,
    ends,
    used,
    own,
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

/** The usage meter's surface: `record` is synchronous, `flush` and `close` say what became of the usage. */
export async function usageApi(client: EntitlementsClient): Promise<void> {
  const record: (metric: string, amount?: number) => void = (metric, amount) =>
    client.record(metric, amount, { subject: 'acme', dimensions: { endpoint: 'search' } })
  client.record('api-calls')
  const flushed: FlushResult = await client.flush({ keepalive: true })
  const closed: CloseResult = await client.close({ deadlineMs: 1000 })
  const lines: readonly UsageLine[] = client.setAsideUsage()
  const stats: UsageStats = client.stats().usage
  const options: UsageOptions = { mode: 'raw', maxBatchLines: 100 }
  // @ts-expect-error dimensions are strings
  client.record('api-calls', 1, { subject: 'acme', dimensions: { region: 1 } })
  // @ts-expect-error the mode is 'aggregate' or 'raw'
  const badMode: UsageOptions = { mode: 'sum' }
  void [record, flushed.pending, closed.persisted, lines[0]?.id, stats.dropped, options, badMode]
}

/** Metering is the plug-in the package makes: an app passes it, and cannot make one of its own by accident. */
export function meteringPlugin(): void {
  const plugin: Metering = metering
  createEntitlements({ token, ...options, metering: plugin, usage: { url: 'https://i' } })
  // @ts-expect-error the plug-in is `metering` from entitle, not a flag
  createEntitlements({ token, ...options, metering: true })
}
