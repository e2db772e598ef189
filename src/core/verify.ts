import type { JSONWebKeySet } from 'jose'
import type { EntitlementTokenClaims } from './claims.js'
import { checkClaims, formatClaimProblems } from './claims-check.js'
import { DEFAULTS } from './defaults.js'
import { type Entitlements, toEntitlements } from './entitlements.js'
import { EntitlementError, type EntitlementErrorCode } from './errors.js'
import { mentionsVersion2 } from './format-version.js'
import {
  type Algorithm,
  ASYMMETRIC_ALGORITHMS,
  createKeyResolver,
  type KeyResolver,
  type KeySource,
  type RemoteJwksOptions,
} from './keys.js'
import { type Lease, readLeaseClaim, verifiedLease } from './lease.js'
import { loadVersion2 } from './load-version-2.js'
import { checkRegisteredClaims } from './registered-claims.js'
import { type SignedJwt, verifySignedJwt } from './signed-jwt.js'
import { ENTITLEMENT_TOKEN_TYPE, LEASE_TOKEN_TYPE, REVOCATION_LIST_TYPE } from './token-type.js'

/** Options of {@link createEntitlementVerifier} and {@link verifyEntitlementToken}. */
export interface VerifyOptions {
  /** The trusted public key(s). See {@link KeySource}. */
  keys: KeySource
  /** The expected `iss`; one of several when an array. */
  issuer: string | readonly string[]
  /** This product's identifier; the token's `aud` must include it (or one of them). */
  audience: string | readonly string[]
  /** Signature algorithms accepted. Default `['EdDSA', 'Ed25519', 'ES256']`. HMAC and `none` are never accepted. */
  algorithms?: readonly Algorithm[]
  /** Slack for `exp`, `nbf` and `iat`, in seconds. Default 60. */
  clockToleranceSec?: number
  /** The clock, in epoch milliseconds. Default `Date.now`. Inject one to test or to use trusted time. */
  now?: () => number
  /** Tokens longer than this many characters are rejected before any parsing. Default 16 384. */
  maxTokenLength?: number
  /** How a remote JWK Set (a `URL` in `keys`) is fetched and cached. */
  jwks?: RemoteJwksOptions
}

/** A reusable verifier: keys are imported once, options checked once. */
export interface EntitlementVerifier {
  /**
   * Verifies a compact JWS entitlement token and returns what it grants.
   * @throws {EntitlementError} with a stable `code` for every way a token can be bad.
   */
  verify(token: unknown): Promise<Entitlements>
  /**
   * Verifies a signed revocation list (typ `revocation-list+jwt`, signed by the same keys, same issuer and
   * audience) and returns the token ids it revokes and when it was issued.
   * @throws {EntitlementError} with a stable `code`, as for tokens.
   */
  verifyRevocationList(list: unknown): Promise<RevocationList>
  /**
   * Verifies a signed lease (typ `lease+jwt`, signed by the same keys, same issuer and audience): one seat of a
   * floating-license pool. Pass the lease to a check (`context.lease`) of a feature that needs one.
   * `received: true` for a lease just received from the license server: its length is then counted from now, so
   * a clock here that is off neither refuses it nor stretches it (see {@link Lease.validUntil}).
   * @throws {EntitlementError} with a stable `code`, as for tokens (`token_expired` once it ended).
   */
  verifyLease(lease: unknown, options?: { received?: boolean }): Promise<Lease>
  /** For a remote key set (`keys` is a `URL`): the set it last loaded, if any. `undefined` for other key sources. */
  keySet(): JSONWebKeySet | undefined
}

/** A verified revocation list: the token ids (`jti`) it revokes, and when the server signed it (epoch ms). */
export interface RevocationList {
  readonly revoked: readonly string[]
  readonly issuedAt: number
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/
/** A revocation list lists every revoked token still alive: it may be far longer than a token. */
const MAX_REVOCATION_LIST_LENGTH = 1_048_576

interface VerifierConfig {
  readonly resolveKey: KeyResolver
  readonly issuer: string | string[]
  readonly audience: string | string[]
  readonly algorithms: Algorithm[]
  readonly clockTolerance: number
  readonly now: () => number
  readonly maxTokenLength: number
}

function nonEmptyStrings(value: unknown, option: string): string | string[] {
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : undefined
  if (!list || list.length === 0 || !list.every((item) => typeof item === 'string' && item.length > 0)) {
    throw new TypeError(`${option} must be a non-empty string or a non-empty array of them`)
  }
  return typeof value === 'string' ? value : [...list]
}

function normalize(options: VerifyOptions): VerifierConfig {
  if (typeof options !== 'object' || options === null) throw new TypeError('verify options are required')
  const algorithms: Algorithm[] = [...(options.algorithms ?? DEFAULTS.verify.algorithms)]
  if (algorithms.length === 0) throw new TypeError('algorithms must not be empty')
  for (const alg of algorithms) {
    if (!(ASYMMETRIC_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new TypeError(
        `algorithm ${JSON.stringify(alg)} is not allowed; use one of ${ASYMMETRIC_ALGORITHMS}`,
      )
    }
  }
  const clockTolerance = options.clockToleranceSec ?? DEFAULTS.verify.clockToleranceSec
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0) {
    throw new TypeError('clockToleranceSec must be a finite number of seconds, zero or more')
  }
  const maxTokenLength = options.maxTokenLength ?? DEFAULTS.verify.maxTokenLength
  if (!Number.isInteger(maxTokenLength) || maxTokenLength < 64) {
    throw new TypeError('maxTokenLength must be an integer of at least 64')
  }
  if (options.now !== undefined && typeof options.now !== 'function')
    throw new TypeError('now must be a function')
  const now = options.now ?? Date.now
  return Object.freeze({
    resolveKey: createKeyResolver(options.keys, options.jwks, now),
    issuer: nonEmptyStrings(options.issuer, 'issuer'),
    audience: nonEmptyStrings(options.audience, 'audience'),
    algorithms,
    clockTolerance,
    now,
    maxTokenLength,
  })
}

/**
 * jose's error codes → ours. jose's codes are its public API; its messages are not read. What jose no longer checks
 * (the JWT claims) throws ours already (see registered-claims.ts).
 */
function fromJose(error: unknown): EntitlementError {
  if (error instanceof EntitlementError) return error
  const code = (error as { code?: unknown } | undefined)?.code
  const as = (ours: EntitlementErrorCode, message: string) =>
    new EntitlementError(ours, message, { cause: error })
  switch (code) {
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
      return as('algorithm_not_allowed', 'the token is signed with an algorithm that is not allowed')
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return as('signature_invalid', 'the token signature does not verify with the trusted key')
    case 'ERR_JWKS_NO_MATCHING_KEY':
      return as('key_unknown', 'no trusted key matches the token (kid and alg)')
    case 'ERR_JWKS_TIMEOUT':
    case 'ERR_JWKS_INVALID':
      return as('jwks_unavailable', 'the JWK Set could not be used')
    case 'ERR_JOSE_NOT_SUPPORTED':
      return as('header_unsupported', 'the token header asks for something this verifier does not support')
    case 'ERR_JWS_INVALID':
      return as('token_malformed', 'the token is not a well-formed JWS')
  }
  // A key of the wrong type for the algorithm surfaces from jose and WebCrypto as a TypeError.
  if (error instanceof TypeError) return as('key_invalid', 'the trusted key cannot verify this token')
  return as('token_malformed', 'the token could not be verified')
}

/**
 * A signed token of one kind (`typ`) verified: its signature by jose, its JWT claims by jose's rules (see
 * registered-claims.ts), against the verifier's issuer, audience, algorithms and clock. `now`, when it reads a time
 * from the payload, judges the times instead of the verifier's clock.
 */
async function verifyTyped(
  token: string,
  config: VerifierConfig,
  kind: { readonly typ: string; readonly required: readonly string[] },
  now?: (payload: Record<string, unknown>) => number | undefined,
): Promise<SignedJwt> {
  let signed: SignedJwt
  try {
    signed = await verifySignedJwt(token, config.resolveKey, config.algorithms)
  } catch (error) {
    throw fromJose(error)
  }
  checkRegisteredClaims(signed.header, signed.payload, {
    ...kind,
    issuer: config.issuer,
    audience: config.audience,
    clockTolerance: config.clockTolerance,
    now: now?.(signed.payload) ?? config.now(),
  })
  return signed
}

/** What each kind of signed token must carry beside `iss` and `aud`, in the order a missing claim is reported. */
const ENTITLEMENT_TOKEN = { typ: ENTITLEMENT_TOKEN_TYPE, required: ['jti', 'sub', 'exp', 'iat'] } as const
const REVOCATION_LIST = { typ: REVOCATION_LIST_TYPE, required: ['iat'] } as const
const LEASE_TOKEN = { typ: LEASE_TOKEN_TYPE, required: ['sub', 'exp', 'iat'] } as const

/** The JWT rules check only that `iat` is a number; something signed "in the future" is a clock game. */
function assertNotIssuedInFuture(
  payload: Record<string, unknown>,
  config: VerifierConfig,
  what: string,
): void {
  if (typeof payload.iat === 'number' && payload.iat * 1000 > config.now() + config.clockTolerance * 1000)
    throw new EntitlementError('token_not_yet_valid', `${what} claims to be issued in the future`)
}

/**
 * Creates a verifier for entitlement tokens. Options are checked here, once: a bad option is a `TypeError` now,
 * not a failed verification later.
 *
 * @example
 * ```ts
 * const verifier = createEntitlementVerifier({
 *   keys: new URL('https://license.example.com/.well-known/jwks.json'),
 *   issuer: 'https://license.example.com',
 *   audience: 'my-app',
 * })
 * const entitlements = await verifier.verify(token)
 * ```
 */
export function createEntitlementVerifier(options: VerifyOptions): EntitlementVerifier {
  const config = normalize(options)
  return Object.freeze({
    async verify(token: unknown): Promise<Entitlements> {
      if (typeof token !== 'string')
        throw new EntitlementError('token_malformed', 'the token must be a string')
      // Length first: nothing is decoded, split or matched in an oversized token.
      if (token.length > config.maxTokenLength) {
        throw new EntitlementError(
          'token_too_large',
          `the token is longer than ${config.maxTokenLength} characters`,
        )
      }
      if (/^bearer\s/i.test(token))
        throw new EntitlementError(
          'token_malformed',
          'the token starts with "Bearer ": pass the token alone, without the Authorization scheme',
        )
      if (!COMPACT_JWS.test(token)) {
        throw new EntitlementError(
          'token_malformed',
          'the token is not a compact JWS (three base64url segments)',
        )
      }
      const { header, payload } = await verifyTyped(token, config, ENTITLEMENT_TOKEN)
      assertNotIssuedInFuture(payload, config, 'the token')
      // The rules of `entitlementTokenClaimsSchema`, checked without zod (see claims-check.ts).
      // A token that says anything of format version 2 is checked by its rules, code loaded now (once).
      if (mentionsVersion2(payload)) await loadVersion2()
      const claims = claimsOrThrow(checkClaims(payload))
      return toEntitlements(claims, { alg: header.alg, kid: header.kid })
    },

    async verifyRevocationList(list: unknown): Promise<RevocationList> {
      const text = typeof list === 'string' && list.length <= MAX_REVOCATION_LIST_LENGTH ? list.trim() : ''
      if (!COMPACT_JWS.test(text))
        throw new EntitlementError(
          'token_malformed',
          'a signed revocation list is a compact JWS of at most 1 MB',
        )
      const { payload } = await verifyTyped(text, config, REVOCATION_LIST)
      assertNotIssuedInFuture(payload, config, 'the revocation list')
      const revoked = (payload as { revoked?: unknown }).revoked
      if (!Array.isArray(revoked) || !revoked.every((id) => typeof id === 'string' && id.length > 0))
        throw new EntitlementError(
          'claims_invalid',
          'a revocation list needs "revoked": an array of token ids',
        )
      return { revoked, issuedAt: (payload.iat as number) * 1000 }
    },

    verifyLease: (lease: unknown, options?: { received?: boolean }) =>
      verifyLeaseToken(lease, config, options?.received === true),

    keySet: () => config.resolveKey.keySet?.(),
  })
}

/** The claims checked, or the verifier's error naming the first five problems. */
function claimsOrThrow(checked: ReturnType<typeof checkClaims>): EntitlementTokenClaims {
  if (checked.problems === undefined) return checked.claims
  const what = formatClaimProblems(checked.problems).slice(0, 5).join('; ')
  throw new EntitlementError('claims_invalid', `the token claims are invalid: ${what}`, {
    cause: checked.problems,
  })
}

/** A lease's own signed time, when it is a number: a lease just received is judged by it. */
const signedAt = (payload: Record<string, unknown>) =>
  typeof payload.iat === 'number' && Number.isFinite(payload.iat) ? payload.iat * 1000 : undefined

async function verifyLeaseToken(token: unknown, config: VerifierConfig, received: boolean): Promise<Lease> {
  if (typeof token !== 'string' || token.length > config.maxTokenLength || !COMPACT_JWS.test(token))
    throw new EntitlementError('token_malformed', 'a lease is a compact JWS no longer than a token may be')
  // A lease just received is judged by the server's clock: its own `iat` is "now" for the time checks, and its
  // length counts from its arrival here. The signature, the type, the issuer and the audience are checked alike.
  const { payload } = await verifyTyped(token, config, LEASE_TOKEN, received ? signedAt : undefined)
  if (!received) assertNotIssuedInFuture(payload, config, 'the lease')
  const claim = readLeaseClaim(payload)
  const { sub, iat: issued, exp } = payload as { sub: unknown; iat: number; exp: number }
  if (claim === undefined || typeof sub !== 'string' || sub.length === 0 || !(exp > issued))
    throw new EntitlementError(
      'claims_invalid',
      'a lease needs "lease": { id, pool, holder }, a sub, and exp after iat',
    )
  const length = (exp - issued) * 1000
  return verifiedLease({
    id: claim.id,
    pool: claim.pool,
    subject: sub,
    holder: claim.holder,
    issuedAt: issued * 1000,
    expiresAt: exp * 1000,
    validUntil: received && !claim.borrowed ? config.now() + length : exp * 1000,
    borrowed: claim.borrowed === true,
    token,
  })
}

// Verifiers made for option objects passed to the one-shot functions, so that a caller passing the same
// options object does not import keys again on every call.
const verifiers = new WeakMap<VerifyOptions, EntitlementVerifier>()

/** The verifier for an options object, made once per object. */
export function verifierFor(options: VerifyOptions): EntitlementVerifier {
  let verifier = verifiers.get(options)
  if (!verifier) {
    verifier = createEntitlementVerifier(options)
    verifiers.set(options, verifier)
  }
  return verifier
}

/**
 * Verifies an entitlement token once. For many tokens, create one verifier with {@link createEntitlementVerifier}
 * (or pass the same options object each time: its verifier is reused).
 *
 * @throws {EntitlementError} for every way a token can be bad, with a stable `code`.
 * @example
 * ```ts
 * const entitlements = await verifyEntitlementToken(token, { keys: jwks, issuer, audience: 'my-app' })
 * entitlements.features.has('export') // true
 * ```
 */
export async function verifyEntitlementToken(token: unknown, options: VerifyOptions): Promise<Entitlements> {
  return verifierFor(options).verify(token)
}
