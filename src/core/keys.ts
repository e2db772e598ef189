import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
  type KeyObject,
} from 'jose'
import { importPem } from '../platform/pem-import.js'
import { DEFAULTS } from './defaults.js'
import { EntitlementError } from './errors.js'

/**
 * Where the verifier's trusted public keys come from:
 * - a public JWK, or a JWK Set (`{ keys: [...] }`) for rotation: the token's `kid` picks the key;
 * - a PEM `-----BEGIN PUBLIC KEY-----` string (SPKI), in Node (the browser build takes the JWK instead);
 * - a `CryptoKey` (WebCrypto) or a Node `KeyObject`, of type `public`;
 * - a `URL` of a remote JWK Set, fetched on first use, cached, and fetched again at once when a token names a
 *   `kid` the cached set does not have (a `kid` that missed already waits for the cool-down).
 *
 * Symmetric (HMAC) and private keys are refused with a `TypeError`: a verifier holds public keys only.
 */
export type KeySource = JWK | JSONWebKeySet | string | CryptoKey | KeyObject | URL

/** How a remote JWK Set is fetched and cached. */
export interface RemoteJwksOptions {
  /**
   * How long an unknown `kid` that already triggered a fetch waits before it may trigger another. A `kid` not seen
   * before triggers one at once (a freshly rotated key works immediately), a few per cool-down. Default 30 000 ms.
   */
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
export function createKeyResolver(
  source: KeySource,
  remote: RemoteJwksOptions = {},
  now: () => number = Date.now,
): KeyResolver {
  if (source instanceof URL) return remoteResolver(source, remote, now)
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
  if (importPem === undefined) {
    throw new TypeError(
      'PEM keys are not read by the browser build: pass the public JWK, a JWK Set or its URL (entitle keygen prints the JWK)',
    )
  }
  const importKey = importPem
  // A PEM carries no algorithm, so it is imported once per algorithm a token asks for (already allowlisted
  // by then), and the import is kept.
  const imported = new Map<string, Promise<CryptoKey>>()
  return (header) => {
    const alg = header.alg as string
    let key = imported.get(alg)
    if (!key) {
      key = importKey(trimmed, alg).catch((cause: unknown) => {
        throw new EntitlementError('key_invalid', `the trusted PEM key cannot verify ${alg} signatures`, {
          cause,
        })
      })
      imported.set(alg, key)
    }
    return key
  }
}

/** A key resolver, and for a remote set the set it last loaded (what the client persists to restart offline). */
export type KeyResolver = JWTVerifyGetKey & { readonly keySet?: () => JSONWebKeySet | undefined }

/** Unknown `kid`s that may each trigger a fetch within one cool-down. */
const NEW_KID_FETCHES = 5

/**
 * When a token names a `kid` the loaded set lacks, may the set be fetched again now? A key the server just rotated
 * in must work at once, so a `kid` not missed before triggers a fetch; a `kid` that missed already in this
 * cool-down does not, and neither does a sixth new one (tokens with made-up `kid`s cannot flood the server).
 */
function createRefetchPolicy(cooldownMs: number, now: () => number) {
  const missed = new Set<string | undefined>()
  let windowStart = Number.NEGATIVE_INFINITY
  return (kid: string | undefined): boolean => {
    const at = now()
    if (at - windowStart >= cooldownMs) {
      windowStart = at
      missed.clear()
    }
    if (missed.has(kid) || missed.size >= NEW_KID_FETCHES) return false
    missed.add(kid)
    return true
  }
}

function remoteResolver(url: URL, options: RemoteJwksOptions, now: () => number): KeyResolver {
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    throw new TypeError('a remote JWK Set must be fetched over https (plain http only on loopback)')
  }
  // jose never refetches on a miss by itself (an endless cool-down): the policy above decides, on our clock.
  const jwks = createRemoteJWKSet(url, {
    cooldownDuration: Number.POSITIVE_INFINITY,
    cacheMaxAge: options.cacheMaxAgeMs ?? DEFAULTS.jwks.cacheMaxAgeMs,
    timeoutDuration: options.timeoutMs ?? DEFAULTS.jwks.timeoutMs,
    ...(options.fetch ? { [customFetch]: options.fetch } : {}),
  })
  const mayRefetch = createRefetchPolicy(options.cooldownMs ?? DEFAULTS.jwks.cooldownMs, now)
  const unavailable = (error: unknown) => {
    const code = (error as { code?: unknown }).code
    // Key selection outcomes are the verifier's to map; anything else means the set could not be had.
    if (code === 'ERR_JWKS_NO_MATCHING_KEY' || code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') return error
    return new EntitlementError('jwks_unavailable', `the JWK Set at ${url.href} could not be used`, {
      cause: error,
    })
  }
  const resolve: JWTVerifyGetKey = async (header, token) => {
    try {
      return await jwks(header, token)
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'ERR_JWKS_NO_MATCHING_KEY' || !mayRefetch(header.kid))
        throw unavailable(error)
    }
    try {
      await jwks.reload()
      return await jwks(header, token)
    } catch (error) {
      throw unavailable(error)
    }
  }
  return Object.assign(resolve, { keySet: () => jwks.jwks() })
}
