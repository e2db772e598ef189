import type { DecisionContext } from './decision.js'
import type { Entitlements, FeaturePool } from './entitlements.js'
import { isVerifiedLease } from './lease.js'

/**
 * A floating feature's lease: held for this pool and customer, by the holder the check names (else, in a pool
 * held per machine, by the device it names), and not yet ended.
 */
export function leaseAllows(
  pool: FeaturePool,
  entitlements: Entitlements,
  context: DecisionContext,
  now: number,
): boolean {
  const holder = context.holder ?? (pool.holder === 'machine' ? context.device : undefined)
  return leaseHolds(context.lease, pool, entitlements.subject, holder, now)
}

/**
 * Whether `lease` lets its holder use a feature of `pool` at `now`: a verified lease of this pool, for this
 * customer, by the holder asked about (if one is), not yet ended, counting the pool's grace past its end (not a
 * borrow's: it is never renewed).
 */
function leaseHolds(
  lease: unknown,
  pool: FeaturePool,
  subject: string,
  holder: string | undefined,
  now: number,
): boolean {
  return (
    isVerifiedLease(lease) &&
    lease.pool === pool.name &&
    lease.subject === subject &&
    (holder === undefined || lease.holder === holder) &&
    // The grace covers renewals that fail; a borrow is never renewed, and ends at its end.
    now < lease.validUntil + (lease.borrowed ? 0 : pool.graceMs)
  )
}
