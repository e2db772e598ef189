import { type CryptoKey, type JWK, type KeyObject, SignJWT } from 'jose'
import { describeClaimIssues } from '../core/claim-issues.js'
import { entitlementTokenClaimsSchema } from '../core/claims.js'
import type { Algorithm } from '../core/keys.js'
import type { LeaseClaim } from '../core/lease.js'
import { ENTITLEMENT_TOKEN_TYPE, LEASE_TOKEN_TYPE, REVOCATION_LIST_TYPE } from '../core/token-type.js'

export { describeClaimIssues } from '../core/claim-issues.js'

/** The key a token is signed with, and what its header says about it. */
export interface SignOptions {
  /** A private key: a `CryptoKey`, a Node `KeyObject`, or a private JWK. */
  readonly key: CryptoKey | KeyObject | JWK
  readonly alg: Algorithm
  /** `kid` of the header, so verifiers pick the key from a JWK Set. */
  readonly kid?: string | undefined
}

/** What is wrong with `claims` as an entitlement token payload; empty when nothing is. */
export function claimProblems(claims: unknown): string[] {
  const checked = entitlementTokenClaimsSchema.safeParse(claims)
  return checked.success ? [] : describeClaimIssues(checked.error.issues)
}

/**
 * Signs an entitlement token (`typ: entitlement+jwt`) after validating `claims` with the schema the verifier
 * uses: a license server with a bug fails here, at its own desk, not in every customer's app. Used by the
 * reference server, the CLI's `issue` and `entitle/testing`.
 *
 * @throws TypeError listing each claim that would not verify and what is wrong with it.
 * @example
 * ```ts
 * import { signEntitlementToken } from 'entitle/protocol'
 * const token = await signEntitlementToken(claims, { key: privateKey, alg: 'EdDSA', kid: 'k1' })
 * ```
 */
export async function signEntitlementToken(claims: object, options: SignOptions): Promise<string> {
  const problems = claimProblems(claims)
  if (problems.length > 0)
    throw new TypeError(`these claims would not verify:\n  ${problems.join('\n  ')}`, { cause: problems })
  return signWithType(claims as Record<string, unknown>, ENTITLEMENT_TOKEN_TYPE, options)
}

/**
 * Signs a revocation list (`typ: revocation-list+jwt`) of token ids, as a license server serves it for
 * `client.importRevocations()`.
 *
 * @example
 * ```ts
 * const list = await signRevocationList({ issuer, audience, revoked: ['jti-1'], issuedAt: now }, signing)
 * ```
 */
export function signRevocationList(
  list: { issuer: string; audience: string; revoked: readonly string[]; issuedAt: number },
  options: SignOptions,
): Promise<string> {
  if (!Number.isSafeInteger(list.issuedAt)) throw new TypeError('issuedAt must be whole epoch seconds')
  return signWithType(
    { iss: list.issuer, aud: list.audience, iat: list.issuedAt, revoked: [...list.revoked] },
    REVOCATION_LIST_TYPE,
    options,
  )
}

/**
 * Signs a lease (`typ: lease+jwt`): one seat of a floating-license pool for `subject`, held by `lease.holder`,
 * from `issuedAt` to `expiresAt` (epoch seconds), as a license server hands it out on acquire and on each renewal.
 *
 * @example
 * ```ts
 * const token = await signLeaseToken(
 *   { issuer, audience, subject: 'acme', lease: { id: 'l-1', pool: 'cad', holder: 'host-7' }, issuedAt, expiresAt },
 *   signing,
 * )
 * ```
 */
export function signLeaseToken(
  lease: {
    issuer: string
    audience: string
    subject: string
    lease: LeaseClaim
    issuedAt: number
    expiresAt: number
  },
  options: SignOptions,
): Promise<string> {
  if (!Number.isSafeInteger(lease.issuedAt) || !Number.isSafeInteger(lease.expiresAt))
    throw new TypeError('issuedAt and expiresAt must be whole epoch seconds')
  if (!(lease.expiresAt > lease.issuedAt)) throw new TypeError('a lease must end after it was issued')
  const { id, pool, holder, borrowed } = lease.lease
  return signWithType(
    {
      iss: lease.issuer,
      aud: lease.audience,
      sub: lease.subject,
      iat: lease.issuedAt,
      exp: lease.expiresAt,
      lease: borrowed ? { id, pool, holder, borrowed: true } : { id, pool, holder },
    },
    LEASE_TOKEN_TYPE,
    options,
  )
}

/** Signs any payload with a type and key: `entitle/testing`'s raw `sign()` for attack tests, and the two above. */
export function signWithType(
  payload: Record<string, unknown>,
  typ: string,
  options: SignOptions,
  header: Record<string, unknown> = {},
): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: options.alg, typ, ...(options.kid ? { kid: options.kid } : {}), ...header })
    .sign(options.key)
}
