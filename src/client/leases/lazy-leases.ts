import type { EntitlementError } from '../../core/errors.js'
import type { Lease } from '../../core/lease.js'
import { onFirstUse } from '../on-first-use.js'
import type { LeaseKeeperParts } from './lease-keeper.js'
import type { LeaseOptions, LeaseResult } from './lease-types.js'

/**
 * The lease keeper, made at the first `lease()` (see `onFirstUse`): an app that floats nothing never loads its code
 * (the keeper, renewals, borrows). Before the first `lease()` nothing is held, so a check of a floating feature
 * finds no lease, as it would anyway.
 */
export function createLazyLeases(
  parts: LeaseKeeperParts,
  /** Where the keeper's code comes from: its chunk (a test gives one that fails, as a page gone offline does). */
  code: () => Promise<typeof import('./lease-keeper.js')> = () => import('./lease-keeper.js'),
) {
  const keeper = onFirstUse('lease', () => code().then((module) => module.createLeaseKeeper(parts)))
  return {
    async acquire(pool: string, options?: LeaseOptions): Promise<LeaseResult> {
      try {
        await keeper.load()
      } catch (error) {
        // As when the server cannot be reached: lease() answers, it does not throw.
        const failed = error as EntitlementError
        // Spelled out, not made by `refusal` (lease-types.ts): a function this file and the keeper's chunk both
        // imported would be a chunk of its own, one more file that even a page that only verifies downloads.
        return {
          acquired: false,
          pool,
          reason: 'unavailable',
          inUse: undefined,
          limit: undefined,
          retryAt: undefined,
          detail: failed.message,
          error: failed,
        }
      }
      return keeper.current!.acquire(pool, options)
    },
    /** The lease a check of a floating feature goes by: none before the first lease(). */
    find(subject: string, pool: string, holder: string | undefined): Lease | undefined {
      return keeper.current?.find(subject, pool, holder)
    },
    /** Gives back every lease but borrows, once the keeper a lease() is loading (if one is) is made. */
    async releaseAll(keepalive = false): Promise<void> {
      await keeper.settled()
      await keeper.current?.releaseAll(keepalive)
    },
    /** How many leases it holds. */
    count: (): number => keeper.current?.count() ?? 0,
  }
}
