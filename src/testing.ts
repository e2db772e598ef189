import { exportJWK, generateKeyPair, type JSONWebKeySet, type JWK, type JWTPayload } from 'jose'
import type { EntitlementClaim } from './core/claims.js'
import { formatVersionFor } from './core/format-version.js'
import type { Algorithm } from './core/keys.js'
import { ENTITLEMENT_TOKEN_TYPE } from './core/token-type.js'
import type { VerifyOptions } from './core/verify.js'
import { signEntitlementToken, signLeaseToken, signRevocationList, signWithType } from './protocol/sign.js'

/** Options of {@link createTestIssuer}. */
export interface TestIssuerOptions {
  /** Signing algorithm. Default `EdDSA` (Ed25519). */
  alg?: Algorithm
  /** Key id placed in the JWK Set and in every token header. Default `test-key-1`. */
  kid?: string
  /** `iss` of issued tokens. Default `https://issuer.entitle.test`. */
  issuer?: string
  /** `aud` of issued tokens. Default `entitle-test-app`. */
  audience?: string
  /** Clock for `iat`/`exp`, epoch milliseconds. Default `Date.now`. */
  now?: () => number
}

/** What to put in one token: the `ent` claim (with defaults) and the standard claims. */
export interface TestTokenOptions {
  /** `sub`. Default `customer-1`. */
  subject?: string
  /** Lifetime from `iat`, in seconds. Default 3600. */
  expiresInSec?: number
  /** `iat`, seconds since the epoch. Default: the issuer's clock. */
  issuedAt?: number
  /** `nbf`, seconds since the epoch. Default: none. */
  notBefore?: number
  /** `jti`. Default: a random UUID. */
  tokenId?: string
  /** Overrides the issuer's `kid` for this token (to test rotation or unknown keys). */
  kid?: string
  issuer?: string
  audience?: string | string[]
}

/** What to put in one lease of {@link TestIssuer.lease}. */
export interface TestLeaseOptions {
  holder?: string
  subject?: string
  /** The lease's id. Default: a random UUID. */
  id?: string
  ttlSec?: number
  borrowed?: boolean
  /** `iat`, seconds since the epoch. */
  issuedAt?: number
}

/** A key pair and a signer for entitlement tokens, for tests and local development. Never for production. */
export interface TestIssuer {
  readonly alg: Algorithm
  readonly kid: string
  readonly issuer: string
  readonly audience: string
  /** The public key as a JWK Set: what a license server serves at `/.well-known/jwks.json`. */
  readonly jwks: JSONWebKeySet
  readonly publicJwk: JWK
  readonly privateKey: CryptoKey
  /** Options that make a verifier trust this issuer, with the issuer's clock. */
  readonly verifyOptions: VerifyOptions
  /**
   * Signs an entitlement token. The claims are validated with the same schema the verifier uses, so a test
   * cannot sign a token no server would issue: a `TypeError` names each claim that is wrong and what is wrong
   * with it. `plan` defaults to `{ id: 'test' }`, `features` to `{}`.
   */
  issue(entitlements?: Partial<EntitlementClaim>, options?: TestTokenOptions): Promise<string>
  /**
   * Signs a lease (`typ: lease+jwt`) of `pool` for `subject` (default `customer-1`), held by `holder` (default
   * `holder-1`), lasting `ttlSec` (default 60) from `issuedAt` (default the issuer's clock); `borrowed` for a borrow.
   */
  lease(pool: string, options?: TestLeaseOptions): Promise<string>
  /**
   * Signs a revocation list (typ `revocation-list+jwt`) of these token ids, as a license server serves it for
   * `client.importRevocations()`. `issuedAt` in epoch seconds, default now.
   */
  revocationList(revoked: readonly string[], options?: { issuedAt?: number }): Promise<string>
  /** Signs any payload and header, unvalidated: for testing how your code handles bad tokens. */
  sign(payload: JWTPayload, header?: Record<string, unknown>): Promise<string>
}

/**
 * Creates a throwaway issuer: a fresh key pair and a signer.
 *
 * @example
 * ```ts
 * import { createTestIssuer } from 'entitle/testing'
 * import { checkEntitlement } from 'entitle'
 *
 * const issuer = await createTestIssuer()
 * const token = await issuer.issue({ plan: { id: 'pro' }, features: { export: true } })
 * const decision = await checkEntitlement(token, 'export', issuer.verifyOptions)
 * decision.allowed // true
 * ```
 */
export async function createTestIssuer(options: TestIssuerOptions = {}): Promise<TestIssuer> {
  const alg = options.alg ?? 'EdDSA'
  const kid = options.kid ?? 'test-key-1'
  const issuer = options.issuer ?? 'https://issuer.entitle.test'
  const audience = options.audience ?? 'entitle-test-app'
  const now = options.now ?? Date.now
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }
  const jwks: JSONWebKeySet = { keys: [publicJwk] }

  const signing = { key: privateKey, alg, kid }
  const sign = (payload: JWTPayload, header: Record<string, unknown> = {}) =>
    signWithType(payload, ENTITLEMENT_TOKEN_TYPE, signing, header)

  return Object.freeze({
    alg,
    kid,
    issuer,
    audience,
    jwks,
    publicJwk,
    privateKey,
    verifyOptions: Object.freeze({ keys: jwks, issuer, audience, algorithms: [alg], now }),
    async issue(entitlements: Partial<EntitlementClaim> = {}, token: TestTokenOptions = {}) {
      const iat = token.issuedAt ?? Math.floor(now() / 1000)
      const payload = {
        iss: token.issuer ?? issuer,
        sub: token.subject ?? 'customer-1',
        aud: token.audience ?? audience,
        iat,
        ...(token.notBefore === undefined ? {} : { nbf: token.notBefore }),
        exp: iat + (token.expiresInSec ?? 3600),
        jti: token.tokenId ?? crypto.randomUUID(),
        // The lowest version that says it (2 for a per-resource feature), unless the test gives one.
        ent: {
          v: formatVersionFor({ features: {}, ...entitlements }),
          plan: { id: 'test' },
          features: {},
          ...entitlements,
        },
      }
      return signEntitlementToken(payload, { ...signing, kid: token.kid ?? kid })
    },
    lease(pool: string, lease: TestLeaseOptions = {}) {
      const issuedAt = lease.issuedAt ?? Math.floor(now() / 1000)
      return signLeaseToken(
        {
          issuer,
          audience,
          subject: lease.subject ?? 'customer-1',
          lease: {
            id: lease.id ?? crypto.randomUUID(),
            pool,
            holder: lease.holder ?? 'holder-1',
            ...(lease.borrowed ? { borrowed: true as const } : {}),
          },
          issuedAt,
          expiresAt: issuedAt + (lease.ttlSec ?? 60),
        },
        signing,
      )
    },
    revocationList(revoked: readonly string[], list: { issuedAt?: number } = {}) {
      const issuedAt = list.issuedAt ?? Math.floor(now() / 1000)
      return signRevocationList({ issuer, audience, revoked, issuedAt }, signing)
    },
    sign,
  })
}
