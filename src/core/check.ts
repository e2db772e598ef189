import { decide, deniedForError } from './decide.js'
import type { Decision, DecisionContext } from './decision.js'
import { EntitlementError } from './errors.js'
import {
  type createEntitlementVerifier,
  type EntitlementVerifier,
  type VerifyOptions,
  verifierFor,
} from './verify.js'

/** Options of {@link checkEntitlement}: how to verify (options or a ready verifier) and what is asked. */
export type CheckOptions = (
  | VerifyOptions
  | {
      /** A verifier made once with {@link createEntitlementVerifier}. */
      verifier: EntitlementVerifier
      /** The clock for the decision, in epoch milliseconds. Default `Date.now`. */
      now?: () => number
    }
) & {
  /** What the app knows about this request: subject, roles, device, region, amount, usage. */
  context?: DecisionContext
}

/**
 * Verifies `token` and decides whether `feature` may be used. Never throws on a bad token: a token that cannot be
 * verified is a denial with reason `token_invalid` (or `expired`) and the error code in `error`. Bad options are a
 * `TypeError`, as they are a bug in the caller.
 *
 * @example
 * ```ts
 * const decision = await checkEntitlement(token, 'seats', {
 *   keys: jwks,
 *   issuer: 'https://license.example.com',
 *   audience: 'my-app',
 *   context: { usage: seatsTaken, amount: 1, roles: user.roles },
 * })
 * if (!decision.allowed) return showUpgrade(decision.reason, decision.upgrade)
 * ```
 */
export async function checkEntitlement(
  token: unknown,
  feature: string,
  options: CheckOptions,
): Promise<Decision> {
  if (typeof feature !== 'string' || feature.length === 0)
    throw new TypeError('feature must be a non-empty string')
  if (typeof options !== 'object' || options === null) throw new TypeError('check options are required')
  const verifier = 'verifier' in options ? options.verifier : verifierFor(options)
  const now = options.now ?? Date.now
  let entitlements: Awaited<ReturnType<EntitlementVerifier['verify']>>
  try {
    entitlements = await verifier.verify(token)
  } catch (error) {
    if (error instanceof EntitlementError)
      return deniedForError(feature, error.code, options.context?.subject)
    throw error
  }
  return decide(entitlements, feature, options.context, now())
}
