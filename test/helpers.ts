import { type EntitlementClaim, entitlementTokenClaimsSchema } from '../src/core/claims.js'
import { type Entitlements, toEntitlements } from '../src/core/entitlements.js'
import { EntitlementError, type EntitlementErrorCode } from '../src/core/errors.js'
import { loadVersion2 } from '../src/core/load-version-2.js'

/** The frozen "now" of every unit test: 2026-01-15T12:00:00Z. */
export const NOW = Date.UTC(2026, 0, 15, 12, 0, 0)
export const NOW_SEC = NOW / 1000
export const frozen = () => NOW
export const DAY_SEC = 86_400

// Entitlements made here straight from claims may hold per-resource grants, pools or credits: the verifier loads
// the code of format version 2 for such a token before it builds them, and so does this.
await loadVersion2()

/** Entitlements straight from claims (validated by the real schema), for the pure decision engine. */
export function entitlementsOf(
  ent: Partial<EntitlementClaim>,
  claims: Record<string, unknown> = {},
): Entitlements {
  const parsed = entitlementTokenClaimsSchema.parse({
    iss: 'https://issuer.entitle.test',
    sub: 'customer-1',
    aud: 'entitle-test-app',
    iat: NOW_SEC - 60,
    exp: NOW_SEC + 3600,
    jti: 'token-1',
    ...claims,
    ent: { v: 1, plan: { id: 'pro' }, features: {}, ...ent },
  })
  return toEntitlements(parsed, { alg: 'EdDSA', kid: 'test-key-1' })
}

/** Awaits `promise` and returns the EntitlementError code it rejected with; fails on anything else. */
export async function rejectionCode(promise: Promise<unknown>): Promise<EntitlementErrorCode> {
  try {
    await promise
  } catch (error) {
    if (error instanceof EntitlementError) return error.code
    throw new Error(`expected an EntitlementError, got ${String(error)}`, { cause: error })
  }
  throw new Error('expected a rejection, but the promise resolved')
}

export const b64url = (value: string | Uint8Array): string =>
  Buffer.from(typeof value === 'string' ? value : value).toString('base64url')

/** A compact JWS assembled by hand from header and payload objects and a raw signature segment. */
export function compact(header: object, payload: object, signature = 'c2lnbmF0dXJl'): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${signature}`
}

/** Signs any header and payload with an Ed25519 key through WebCrypto, bypassing every check a JOSE library makes. */
export async function signRawEd25519(
  privateKey: CryptoKey,
  header: object,
  payload: object,
): Promise<string> {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`
  const signature = await crypto.subtle.sign('Ed25519', privateKey, new TextEncoder().encode(input))
  return `${input}.${b64url(new Uint8Array(signature))}`
}

/** A small seeded generator (mulberry32): the same sequence on every run, numbers in [0, 1). */
export function seeded(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
