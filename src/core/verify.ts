import { type JSONWebKeySet, type JWTPayload, type JWTVerifyResult, jwtVerify } from 'jose'
import { checkClaims, formatClaimProblems } from './claims-check.js'
import { DEFAULTS } from './defaults.js'
import { type Entitlements, toEntitlements } from './entitlements.js'
import { EntitlementError, type EntitlementErrorCode } from './errors.js'
import {
  type Algorithm,
  ASYMMETRIC_ALGORITHMS,
  createKeyResolver,
  type KeyResolver,
  type KeySource,
  type RemoteJwksOptions,
} from './keys.js'
import { type Lease, readLeaseClaim, verifiedLease } from './lease.js'
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

/** The expected issuer or audience, as a message names it. */
const named = (values: string | readonly string[]) =>
  (typeof values === 'string' ? [values] : values).map((value) => JSON.stringify(value)).join(' or ')

/** jose's error codes → ours. jose's codes are its public API; its messages are not read. */
function fromJose(
  error: unknown,
  expected: Pick<VerifierConfig, 'issuer' | 'audience'>,
  typ = ENTITLEMENT_TOKEN_TYPE,
): EntitlementError {
  if (error instanceof EntitlementError) return error
  const { code, claim, reason, payload } = (error ?? {}) as {
    code?: unknown
    claim?: unknown
    reason?: unknown
    payload?: { iss?: unknown; aud?: unknown }
  }
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
    case 'ERR_JWT_EXPIRED':
      return as('token_expired', 'the token has expired')
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (reason === 'missing' && claim !== 'typ') {
        return as('claims_invalid', `the token has no ${String(claim)} claim`)
      }
      switch (claim) {
        case 'iss':
          return as(
            'issuer_invalid',
            `the token was issued by ${JSON.stringify(payload?.iss)}, not ${named(expected.issuer)}`,
          )
        case 'aud':
          return as(
            'audience_invalid',
            `the token is for the audience ${JSON.stringify(payload?.aud)}, not ${named(expected.audience)}`,
          )
        case 'nbf':
        case 'iat':
          return as('token_not_yet_valid', 'the token is not valid yet')
        case 'typ':
          return as(
            'type_invalid',
            typ === ENTITLEMENT_TOKEN_TYPE
              ? `the token header typ must be "${typ}"`
              : `the header typ must be "${typ}": this is not a signed ${typ === LEASE_TOKEN_TYPE ? 'lease' : 'revocation list'}`,
          )
        default:
          return as('claims_invalid', `the token claim ${String(claim)} is missing or invalid`)
      }
    case 'ERR_JWS_INVALID':
    case 'ERR_JWT_INVALID':
      return as('token_malformed', 'the token is not a well-formed JWS')
  }
  // A key of the wrong type for the algorithm surfaces from jose and WebCrypto as a TypeError.
  if (error instanceof TypeError) return as('key_invalid', 'the trusted key cannot verify this token')
  return as('token_malformed', 'the token could not be verified')
}

async function verifySignatureAndTime(
  token: string,
  config: VerifierConfig,
  typ = ENTITLEMENT_TOKEN_TYPE,
  requiredClaims = ['iat', 'exp', 'sub', 'jti'],
): Promise<JWTVerifyResult> {
  const options = {
    algorithms: config.algorithms,
    issuer: config.issuer,
    audience: config.audience,
    typ,
    clockTolerance: config.clockTolerance,
    currentDate: new Date(config.now()),
    requiredClaims,
  }
  try {
    return await jwtVerify(token, config.resolveKey, options)
  } catch (error) {
    // With no `kid`, several trusted keys may fit; jose hands them over to be tried in turn.
    if ((error as { code?: unknown }).code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw error
    let last: unknown = error
    for await (const key of error as AsyncIterable<CryptoKey>) {
      try {
        return await jwtVerify(token, key, options)
      } catch (candidateError) {
        last = candidateError
        if ((candidateError as { code?: unknown }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') break
      }
    }
    throw last
  }
}

/** jose checks `iat` only against a maximum age; something signed "in the future" is a clock game. */
function assertNotIssuedInFuture(payload: JWTPayload, config: VerifierConfig, what: string): void {
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
      let verified: JWTVerifyResult<JWTPayload>
      try {
        verified = await verifySignatureAndTime(token, config)
      } catch (error) {
        throw fromJose(error, config)
      }
      const { payload, protectedHeader } = verified
      assertNotIssuedInFuture(payload, config, 'the token')
      // The rules of `entitlementTokenClaimsSchema`, checked without zod (see claims-check.ts).
      const checked = checkClaims(payload)
      if (checked.problems !== undefined) {
        const what = formatClaimProblems(checked.problems).slice(0, 5).join('; ')
        throw new EntitlementError('claims_invalid', `the token claims are invalid: ${what}`, {
          cause: checked.problems,
        })
      }
      return toEntitlements(checked.claims, { alg: protectedHeader.alg, kid: protectedHeader.kid })
    },

    async verifyRevocationList(list: unknown): Promise<RevocationList> {
      const text = typeof list === 'string' && list.length <= MAX_REVOCATION_LIST_LENGTH ? list.trim() : ''
      if (!COMPACT_JWS.test(text))
        throw new EntitlementError(
          'token_malformed',
          'a signed revocation list is a compact JWS of at most 1 MB',
        )
      let payload: JWTPayload
      try {
        ;({ payload } = await verifySignatureAndTime(text, config, REVOCATION_LIST_TYPE, ['iat']))
      } catch (error) {
        throw fromJose(error, config, REVOCATION_LIST_TYPE)
      }
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

/** The signed time of a compact JWS's payload, read before it is verified: only to judge a lease by its own clock. */
function signedAt(token: string): number | undefined {
  try {
    const json = JSON.parse(new TextDecoder().decode(base64url(token.split('.')[1]!))) as { iat?: unknown }
    return typeof json.iat === 'number' && Number.isFinite(json.iat) ? json.iat : undefined
  } catch {
    return undefined
  }
}

function base64url(text: string): Uint8Array {
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'))
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

async function verifyLeaseToken(token: unknown, config: VerifierConfig, received: boolean): Promise<Lease> {
  if (typeof token !== 'string' || token.length > config.maxTokenLength || !COMPACT_JWS.test(token))
    throw new EntitlementError('token_malformed', 'a lease is a compact JWS no longer than a token may be')
  // A lease just received is judged by the server's clock: its own `iat` is "now" for the time checks, and its
  // length counts from its arrival here. The signature, the type, the issuer and the audience are checked alike.
  const iat = received ? signedAt(token) : undefined
  const timed = iat === undefined ? config : { ...config, now: () => iat * 1000 }
  let payload: JWTPayload
  try {
    ;({ payload } = await verifySignatureAndTime(token, timed, LEASE_TOKEN_TYPE, ['iat', 'exp', 'sub']))
  } catch (error) {
    throw fromJose(error, config, LEASE_TOKEN_TYPE)
  }
  if (!received) assertNotIssuedInFuture(payload, config, 'the lease')
  const claim = readLeaseClaim(payload as Record<string, unknown>)
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
