import { EntitlementError } from './errors.js'
import { ENTITLEMENT_TOKEN_TYPE, LEASE_TOKEN_TYPE } from './token-type.js'

/*
 * The JWT rules jose's `jwtVerify` applies on top of the signature, applied here to a payload `signed-jwt.ts` has
 * read: the header's `typ`, the claims that must be there, `iss`, `aud`, `nbf` and `exp` against the clock with its
 * tolerance. Same order and same outcomes as when jose applied them (its order decides which of several faults a
 * token is refused for), so the error codes a token gets did not change when the verifier stopped using jwtVerify.
 * One outcome is ours: a clock that reads no number refuses every token (through jose it surfaced as `key_invalid`).
 */

/** What a signed token of one kind must say, and the clock it is judged by. */
export interface ExpectedClaims {
  readonly typ: string
  readonly issuer: string | readonly string[]
  readonly audience: string | readonly string[]
  /** Claims beside `iss` and `aud` that must be present, in the order a missing one is reported. */
  readonly required: readonly string[]
  /** Slack for `nbf` and `exp`, in seconds. */
  readonly clockTolerance: number
  /** The time to judge by, epoch milliseconds. */
  readonly now: number
}

/** The expected issuer or audience, as a message names it. */
const named = (values: string | readonly string[]) =>
  (typeof values === 'string' ? [values] : values).map((value) => JSON.stringify(value)).join(' or ')

/** A media type as RFC 7515 compares `typ`: without `application/`, case aside. */
const mediaType = (typ: string) => {
  const lower = typ.toLowerCase()
  return lower.startsWith('application/') ? lower.slice('application/'.length) : lower
}

function typeInvalid(typ: string): EntitlementError {
  const what = typ === LEASE_TOKEN_TYPE ? 'lease' : 'revocation list'
  return new EntitlementError(
    'type_invalid',
    typ === ENTITLEMENT_TOKEN_TYPE
      ? `the token header typ must be "${typ}"`
      : `the header typ must be "${typ}": this is not a signed ${what}`,
  )
}

const includes = (values: string | readonly string[], value: unknown) =>
  typeof values === 'string' ? values === value : values.includes(value as string)

/**
 * Throws the `EntitlementError` jose's rules would have led to, or returns: `type_invalid`, `claims_invalid` (a
 * claim missing, or `exp` not a number), `issuer_invalid`, `audience_invalid`, `token_not_yet_valid` (`nbf` ahead,
 * or `iat`/`nbf` not numbers), `token_expired`.
 */
export function checkRegisteredClaims(
  header: { readonly typ?: unknown },
  payload: Record<string, unknown>,
  expected: ExpectedClaims,
): void {
  const { typ, issuer, audience } = expected
  if (typeof header.typ !== 'string' || mediaType(header.typ) !== mediaType(typ)) throw typeInvalid(typ)
  for (const claim of ['iss', 'aud', ...expected.required])
    if (!Object.hasOwn(payload, claim))
      throw new EntitlementError('claims_invalid', `the token has no ${claim} claim`)
  if (!includes(issuer, payload.iss))
    throw new EntitlementError(
      'issuer_invalid',
      `the token was issued by ${JSON.stringify(payload.iss)}, not ${named(issuer)}`,
    )
  const aud = payload.aud
  const forUs =
    typeof aud === 'string'
      ? includes(audience, aud)
      : Array.isArray(aud) &&
        (typeof audience === 'string' ? [audience] : audience).some((one) => aud.includes(one))
  if (!forUs)
    throw new EntitlementError(
      'audience_invalid',
      `the token is for the audience ${JSON.stringify(aud)}, not ${named(audience)}`,
    )
  const now = Math.floor(expected.now / 1000)
  // A clock that reads no number would pass every comparison below: nothing is valid by it.
  if (!Number.isFinite(now))
    throw new EntitlementError(
      'token_not_yet_valid',
      'the clock does not read a time: no token can be judged by it',
    )
  const { iat, nbf, exp } = payload
  if ((iat !== undefined && typeof iat !== 'number') || (nbf !== undefined && typeof nbf !== 'number'))
    throw new EntitlementError('token_not_yet_valid', 'the token is not valid yet')
  if (typeof nbf === 'number' && nbf > now + expected.clockTolerance)
    throw new EntitlementError('token_not_yet_valid', 'the token is not valid yet')
  if (exp !== undefined && typeof exp !== 'number')
    throw new EntitlementError('claims_invalid', 'the token claim exp is missing or invalid')
  if (typeof exp === 'number' && exp <= now - expected.clockTolerance)
    throw new EntitlementError('token_expired', 'the token has expired')
}
