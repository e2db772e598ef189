import type { JWK } from 'jose'
import { EntitlementError } from '../../core/errors.js'
import type { Lease } from '../../core/lease.js'
import type { SerializedStorage } from '../serialized-storage.js'
import type { TokenVerifier } from '../tokens/token-verifier.js'

const BORROW_KEY = 'entitle:borrow:'
const borrowKey = (subject: string, pool: string) => `${BORROW_KEY}${JSON.stringify([subject, pool])}`

/** The `kid` of a compact JWS's header, if it names one. */
function headerKid(token: string): string | undefined {
  try {
    const header = JSON.parse(atob(token.split('.')[0]!.replace(/-/g, '+').replace(/_/g, '/'))) as {
      kid?: unknown
    }
    return typeof header.kid === 'string' ? header.kid : undefined
  } catch {
    return undefined
  }
}

/** A borrow as kept in storage: its token, and the key that verified it (a remote set's). */
function parseKept(text: string | undefined): { token: string; key: JWK | undefined } | undefined {
  if (text === undefined) return undefined
  try {
    const kept = JSON.parse(text) as { token?: unknown; key?: unknown }
    if (typeof kept.token !== 'string') return undefined
    const key = typeof kept.key === 'object' && kept.key !== null ? (kept.key as JWK) : undefined
    return { token: kept.token, key }
  } catch {
    return undefined
  }
}

/**
 * Borrowed leases in the client's storage, one per customer and pool, each with the key that verified it: a laptop
 * that restarts offline cannot fetch the remote key set, and its borrow must still verify.
 */
export function createBorrowStore(storage: SerializedStorage, verifier: TokenVerifier) {
  return {
    /** Keeps the borrow's token (or forgets it: `undefined`). */
    keep(subject: string, pool: string, token: string | undefined): void {
      const key = token === undefined ? undefined : verifier.keyById(headerKid(token))
      storage.write(borrowKey(subject, pool), token && JSON.stringify({ token, key }))
    },

    /**
     * The borrow kept for this customer, pool and holder, verified again (its signed end against this clock); a
     * borrow proven bad or ended is forgotten, one that cannot be verified now (no key) is kept for later.
     */
    async resume(subject: string, pool: string, holder: string): Promise<Lease | undefined> {
      const kept = parseKept(await storage.read(borrowKey(subject, pool)))
      if (kept === undefined) return undefined
      try {
        const lease = await verifier.inner.verifyLease(kept.token).catch((error: unknown) => {
          if (
            kept.key === undefined ||
            !(error instanceof EntitlementError) ||
            error.code !== 'jwks_unavailable'
          )
            throw error
          return verifier.withKnownKey(kept.key).verifyLease(kept.token)
        })
        const ours = lease.subject === subject && lease.pool === pool && lease.holder === holder
        return ours && lease.borrowed ? lease : undefined
      } catch (error) {
        if (error instanceof EntitlementError && error.code !== 'jwks_unavailable')
          storage.write(borrowKey(subject, pool), undefined)
        return undefined
      }
    },
  }
}
