import type { JWK } from 'jose'
import { DEFAULTS } from '../../core/defaults.js'
import type { Entitlements } from '../../core/entitlements.js'
import { EntitlementError } from '../../core/errors.js'
import { createEntitlementVerifier, type EntitlementVerifier, type VerifyOptions } from '../../core/verify.js'

/** A token that verified, and the public key of a remote set that verified it (kept with it in storage). */
export interface Verified {
  readonly entitlements: Entitlements
  readonly key: JWK | undefined
}

/** Verification as the client needs it: with the stale grace, and with a remembered key when the set is away. */
export interface TokenVerifier {
  /** Verifies under the configured keys; a token past `exp` but inside the stale grace verifies too. */
  verify(token: string): Promise<Verified>
  /**
   * Verifies under the key that verified the token in an earlier run: for a restart while the remote key set
   * cannot be reached. A signature that fails under it is proof the stored token is bad.
   */
  verifyWithKnownKey(token: string, key: JWK): Promise<Verified>
  /** The key of the remote set with this `kid` (the only one, when none is named), to keep beside what it signed. */
  keyById(kid: string | undefined): JWK | undefined
  /** A verifier that trusts only `key`: for what was kept with its key, while the remote set cannot be reached. */
  withKnownKey(key: JWK): EntitlementVerifier
  readonly inner: EntitlementVerifier
}

/**
 * Verification errors that prove nothing about a stored token: the key set could not be fetched, the clock is
 * behind the token or past it (this machine's clock is not to be trusted with a judgement that destroys data: a
 * clock two hours fast at one start must not delete every stored license), or this app is configured for another
 * issuer or audience (a fix to the configuration makes the same token good). Anything else a stored token fails
 * with (a signature, its claims, its type) proves it bad, and it is forgotten.
 */
const PROVES_NOTHING = new Set([
  'jwks_unavailable',
  // The code for tokens of format version 2 could not be fetched (a browser offline): the token is not judged.
  'server_unavailable',
  'token_not_yet_valid',
  'token_expired',
  'issuer_invalid',
  'audience_invalid',
])

/** Whether an error from verifying a token proves the token bad (so it is an answer, not an outage). */
export function provesBad(error: unknown): error is EntitlementError {
  return (
    error instanceof EntitlementError && !PROVES_NOTHING.has(error.code) && error.code !== 'token_unavailable'
  )
}

/** Whether an error means the answer cannot be known now (the source or the key set is out of reach). */
export function cannotKnow(error: unknown): boolean {
  if (!(error instanceof EntitlementError)) return true
  return (
    error.code === 'jwks_unavailable' ||
    error.code === 'server_unavailable' ||
    error.code === 'server_rejected' ||
    error.code === 'token_unavailable'
  )
}

export function createTokenVerifier(
  options: Omit<VerifyOptions, 'now'>,
  now: () => number,
  staleGraceMs: number,
): TokenVerifier {
  const tolerance = options.clockToleranceSec ?? DEFAULTS.verify.clockToleranceSec
  const base: VerifyOptions = {
    keys: options.keys,
    issuer: options.issuer,
    audience: options.audience,
    clockToleranceSec: tolerance,
    now,
    ...(options.algorithms !== undefined ? { algorithms: options.algorithms } : {}),
    ...(options.maxTokenLength !== undefined ? { maxTokenLength: options.maxTokenLength } : {}),
    ...(options.jwks !== undefined ? { jwks: options.jwks } : {}),
  }
  const strict = createEntitlementVerifier(base)
  // Made on first need: most clients never verify a token past its exp, or restart without their key set.
  let stale: EntitlementVerifier | undefined
  const known = new Map<string, { strict: EntitlementVerifier; stale?: EntitlementVerifier }>()
  /** One frozen copy per key of the set, shared by every entry it verified (not one copy per customer). */
  const copies = new WeakMap<JWK, JWK>()

  /** Verifies with `make(tolerance)`'s verifier, and past `exp` again with one whose tolerance reaches the grace. */
  async function withGrace(
    token: string,
    first: EntitlementVerifier,
    graceful: () => EntitlementVerifier,
  ): Promise<Entitlements> {
    try {
      return await first.verify(token)
    } catch (error) {
      if (!(error instanceof EntitlementError) || error.code !== 'token_expired' || staleGraceMs === 0)
        throw error
      return graceful().verify(token)
    }
  }

  const keyOf = (entitlements: Entitlements) => keyById(entitlements.keyId)

  function keyById(kid: string | undefined): JWK | undefined {
    const set = strict.keySet() ?? stale?.keySet()
    if (set === undefined) return undefined
    const candidates = set.keys.filter((key) => kid === undefined || key.kid === kid)
    if (candidates.length !== 1) return undefined
    const key = candidates[0]!
    let copy = copies.get(key)
    if (copy === undefined) {
      copy = Object.freeze({ ...key })
      copies.set(key, copy)
    }
    return copy
  }

  function knownStrict(key: JWK) {
    const id = JSON.stringify(key)
    let verifiers = known.get(id)
    if (verifiers === undefined) {
      if (known.size > 64) known.clear()
      verifiers = { strict: createEntitlementVerifier({ ...base, keys: { keys: [key] } }) }
      known.set(id, verifiers)
    }
    return verifiers
  }

  return {
    inner: strict,
    keyById,
    withKnownKey: (key) => knownStrict(key).strict,
    async verify(token) {
      const entitlements = await withGrace(token, strict, () => {
        stale ??= createEntitlementVerifier({ ...base, clockToleranceSec: tolerance + staleGraceMs / 1000 })
        return stale
      })
      return { entitlements, key: keyOf(entitlements) }
    },
    async verifyWithKnownKey(token, key) {
      const pair = knownStrict(key)
      const entitlements = await withGrace(token, pair.strict, () => {
        pair.stale ??= createEntitlementVerifier({
          ...base,
          keys: { keys: [key] },
          clockToleranceSec: tolerance + staleGraceMs / 1000,
        })
        return pair.stale
      })
      return { entitlements, key }
    },
  }
}
