import type { JWK } from 'jose'
import { EntitlementError } from '../../core/errors.js'
import type { SerializedStorage } from '../serialized-storage.js'
import { provesBad, type TokenVerifier, type Verified } from './token-verifier.js'

const TOKEN_KEY = 'entitle:token:'

/** What the client keeps of a customer's last token, so that a restart answers before the source does. */
export interface StoredToken {
  readonly token: string
  readonly etag: string | undefined
  /** When the source last confirmed it. */
  readonly confirmedAt: number
  /** The remote key that verified it: a restart during a key-set outage verifies with it. */
  readonly key?: JWK
}

/** A stored token that verified, with what was stored beside it. */
export interface RestoredToken {
  readonly stored: StoredToken
  readonly verified: Verified
}

/** What restoring found: the token, or that one is stored that this machine's clock does not accept now. */
export type Restored = RestoredToken | { readonly judgedByClock: true } | undefined

/** Verification errors that are this machine's clock's judgement, not the token's. */
const CLOCK_JUDGEMENTS = new Set(['token_expired', 'token_not_yet_valid'])

/**
 * Each customer's last token in the client's storage. The rule it keeps: a stored token is forgotten only when
 * proven bad (unreadable, a signature that fails under a key set that loaded, expired past the grace), never
 * because the key set or the server is out of reach.
 */
export function createStoredTokens(
  storage: SerializedStorage,
  verifier: TokenVerifier,
  report: (during: 'storage' | 'load', key: string, error: unknown) => void,
) {
  const forget = (key: string) => storage.write(`${TOKEN_KEY}${key}`, undefined)

  async function verify(stored: StoredToken): Promise<Verified> {
    try {
      return await verifier.verify(stored.token)
    } catch (error) {
      // The key set cannot be fetched (a restart during an outage): the key that verified it before still can.
      if (error instanceof EntitlementError && error.code === 'jwks_unavailable' && stored.key !== undefined)
        return verifier.verifyWithKnownKey(stored.token, stored.key)
      throw error
    }
  }

  return {
    save(key: string, stored: StoredToken): void {
      storage.write(`${TOKEN_KEY}${key}`, JSON.stringify(stored))
    },
    forget,

    /** The customer's stored token, verified; `undefined` when there is none or it cannot be used now. */
    async restore(key: string): Promise<Restored> {
      const raw = await storage.read(`${TOKEN_KEY}${key}`)
      if (raw === undefined) return undefined
      let stored: StoredToken
      try {
        stored = JSON.parse(raw) as StoredToken
        if (typeof stored?.token !== 'string') throw new TypeError('no token')
      } catch (error) {
        forget(key)
        report(
          'storage',
          key,
          new EntitlementError('storage_failed', `the stored token of ${key || 'this app'} is unreadable`, {
            cause: error,
          }),
        )
        return undefined
      }
      try {
        return { stored, verified: await verify(stored) }
      } catch (error) {
        // Kept when nothing is proven (the key set is out of reach, the configuration may be fixed, the clock
        // may be wrong).
        if (provesBad(error)) {
          forget(key)
          return undefined
        }
        report('load', key, error)
        return CLOCK_JUDGEMENTS.has((error as EntitlementError).code) ? { judgedByClock: true } : undefined
      }
    },
  }
}

export type StoredTokens = ReturnType<typeof createStoredTokens>
