import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  importSPKI,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
  type KeyObject,
} from 'jose'
import { EntitlementError } from './errors.js'

/**
 * Where the verifier's trusted public keys come from:
 * - a public JWK, or a JWK Set (`{ keys: [...] }`) for rotation: the token's `kid` picks the key;
 * - a PEM `-----BEGIN PUBLIC KEY-----` string (SPKI);
 * - a `CryptoKey` (WebCrypto) or a Node `KeyObject`, of type `public`;
 * - a `URL` of a remote JWK Set, fetched on first use, cached, and fetched again when a token names a `kid` the
 *   cached set does not have (at most once per cool-down).
 *
 * Symmetric (HMAC) and private keys are refused with a `TypeError`: a verifier holds public keys only.
 */
export type KeySource = JWK | JSONWebKeySet | string | CryptoKey | KeyObject | URL

/** How a remote JWK Set is fetched and cached. */
export interface RemoteJwksOptions {
  /** Minimum time between two fetches triggered by an unknown `kid`. Default 30 000 ms. */
  cooldownMs?: number
  /** How long a fetched set is used before it is fetched again. Default 600 000 ms. */
  cacheMaxAgeMs?: number
  /** Abort a fetch after this long. Default 5 000 ms. */
  timeoutMs?: number
  /** The `fetch` to use; defaults to the global one. */
  fetch?: typeof fetch
}

/** Public-key algorithms a verifier may allow. HMAC and `none` are not among them, by design. */
export const ASYMMETRIC_ALGORITHMS = [
  'EdDSA',
  'Ed25519',
  'ES256',
  'ES384',
  'ES512',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
] as const
/** A signature algorithm a verifier may allow: EdDSA/Ed25519, ECDSA or RSA; never HMAC or `none`. */
export type Algorithm = (typeof ASYMMETRIC_ALGORITHMS)[number]

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]'])

/** Turns a {@link KeySource} into the key function jose calls with each token's protected header. */
export function createKeyResolver(source: KeySource, remote: RemoteJwksOptions = {}): JWTVerifyGetKey {
  if (source instanceof URL) return remoteResolver(source, remote)
  if (typeof source === 'string') return pemResolver(source)
  if (typeof source !== 'object' || source === null) {
    throw new TypeError('keys must be a JWK, a JWK Set, a PEM public key, a CryptoKey, a KeyObject or a URL')
  }
  if (Array.isArray((source as JSONWebKeySet).keys)) {
    const jwks = source as JSONWebKeySet
    jwks.keys.forEach(assertPublicJwk)
    return createLocalJWKSet(jwks)
  }
  if (typeof (source as JWK).kty === 'string') {
    assertPublicJwk(source as JWK)
    return createLocalJWKSet({ keys: [source as JWK] })
  }
  const type = (source as { type?: unknown }).type
  if (type === 'public') {
    const key = source as CryptoKey | KeyObject
    return async () => key
  }
  if (type === 'private' || type === 'secret') {
    throw new TypeError(`keys must be a public key, got a ${type} key`)
  }
  throw new TypeError('keys must be a JWK, a JWK Set, a PEM public key, a CryptoKey, a KeyObject or a URL')
}

function assertPublicJwk(jwk: JWK): void {
  if (typeof jwk !== 'object' || jwk === null || typeof jwk.kty !== 'string') {
    throw new TypeError('every JWK must be an object with a "kty"')
  }
  if (jwk.kty === 'oct')
    throw new TypeError('symmetric (oct) keys are not accepted: entitlement tokens are signed')
  if (jwk.d !== undefined) throw new TypeError('pass the public JWK, not the private one (it has a "d")')
}

function pemResolver(pem: string): JWTVerifyGetKey {
  const trimmed = pem.trim()
  if (!trimmed.startsWith('-----BEGIN PUBLIC KEY-----') || !trimmed.endsWith('-----END PUBLIC KEY-----')) {
    throw new TypeError('a string key must be a PEM "-----BEGIN PUBLIC KEY-----" (SPKI) block')
  }
  // A PEM carries no algorithm, so it is imported once per algorithm a token asks for (already allowlisted
  // by then), and the import is kept.
  const imported = new Map<string, Promise<CryptoKey>>()
  return (header) => {
    const alg = header.alg as string
    let key = imported.get(alg)
    if (!key) {
      key = importSPKI(trimmed, alg).catch((cause: unknown) => {
        throw new EntitlementError('key_invalid', `the trusted PEM key cannot verify ${alg} signatures`, {
          cause,
        })
      })
      imported.set(alg, key)
    }
    return key
  }
}

function remoteResolver(url: URL, options: RemoteJwksOptions): JWTVerifyGetKey {
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    throw new TypeError('a remote JWK Set must be fetched over https (plain http only on loopback)')
  }
  const jwks = createRemoteJWKSet(url, {
    cooldownDuration: options.cooldownMs ?? 30_000,
    cacheMaxAge: options.cacheMaxAgeMs ?? 600_000,
    timeoutDuration: options.timeoutMs ?? 5_000,
    ...(options.fetch ? { [customFetch]: options.fetch } : {}),
  })
  return async (header, token) => {
    try {
      return await jwks(header, token)
    } catch (error) {
      const code = (error as { code?: unknown }).code
      // Key selection outcomes are the verifier's to map; anything else means the set could not be had.
      if (code === 'ERR_JWKS_NO_MATCHING_KEY' || code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw error
      throw new EntitlementError('jwks_unavailable', `the JWK Set at ${url.href} could not be used`, {
        cause: error,
      })
    }
  }
}
