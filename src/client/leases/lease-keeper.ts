import type { Entitlements, FeaturePool } from '../../core/entitlements.js'
import { EntitlementError } from '../../core/errors.js'
import type { Lease } from '../../core/lease.js'
import type { Platform } from '../../platform/platform.js'
import type { LeaseAnswer } from '../../transport/lease-answer.js'
import type { LicenseServerClient } from '../../transport/license-server-client.js'
import type { LeaseChangeEvent } from '../options.js'
import type { SerializedStorage } from '../serialized-storage.js'
import type { TokenVerifier } from '../tokens/token-verifier.js'
import { createBorrowStore } from './borrow-store.js'
import { holdLease, type LiveLease } from './held-lease.js'
import { type LeaseOptions, type LeaseResult, refusal } from './lease-types.js'

/** Checks `lease()`'s options before anything is asked of the server. */
function checkOptions(pool: unknown, options: LeaseOptions): void {
  if (typeof pool !== 'string' || pool.length === 0) throw new TypeError('pool must be a non-empty string')
  const { holder, borrowMs, metadata } = options
  if (holder !== undefined && (typeof holder !== 'string' || !/^[\x21-\x7e]{1,256}$/.test(holder)))
    throw new TypeError('holder must be 1 to 256 printable characters, without spaces')
  if (borrowMs !== undefined && (!Number.isFinite(borrowMs) || borrowMs < 60_000))
    throw new TypeError('borrowMs must be at least 60 000 (a minute)')
  if (metadata !== undefined && (typeof metadata !== 'object' || metadata === null))
    throw new TypeError('metadata must be an object of strings')
}

/** What the lease keeper works with: the client's parts it reads and tells. */
export interface LeaseKeeperParts {
  readonly server: LicenseServerClient | undefined
  readonly verifier: TokenVerifier
  readonly platform: Platform
  readonly storage: SerializedStorage
  /** The customer's entitlements, loaded if need be. */
  readonly load: (subject: string | undefined) => Promise<Entitlements | undefined>
  readonly background: (work: Promise<unknown>) => void
  /** Tells the client's `lease` listeners (the React store among them) that what checks answer changed. */
  readonly changed: (event: LeaseChangeEvent) => void
}

/**
 * The leases this client holds, by customer and pool: what `lease()` acquires, what a check of a floating feature
 * finds, and what `close()` gives back. Borrows are kept in storage, so a restart offline still holds them.
 */
export function createLeaseKeeper(parts: LeaseKeeperParts) {
  const { server, platform } = parts
  const verifier = parts.verifier.inner
  const borrows = createBorrowStore(parts.storage, parts.verifier)
  /** `subject\0pool` → the leases held of that pool (one per holder). */
  const held = new Map<string, Set<LiveLease>>()
  /** This client's own holder id, for pools held per process: made on first need (a Worker's module scope refuses random values). */
  let processHolder: string | undefined
  const ownHolder = () => (processHolder ??= `process-${crypto.randomUUID()}`)
  const slot = (subject: string, pool: string) => `${subject}\u0000${pool}`

  const leaseParts = {
    server: server!,
    verifier,
    platform,
    background: parts.background,
    ended(lease: LiveLease) {
      held.get(slot(lease.subject, lease.pool))?.delete(lease)
    },
    keep(lease: LiveLease, token: string | undefined) {
      if (lease.borrowed) borrows.keep(lease.subject, lease.pool, token)
    },
    changed(lease: LiveLease, state: LeaseChangeEvent['state']) {
      const { subject, pool, holder, id } = lease
      parts.changed({ subject, pool, holder, id, state })
    },
  }

  function hold(
    lease: Lease,
    answer: { heartbeatMs?: number | undefined; expiresInMs: number },
    pool: FeaturePool,
  ) {
    const key = slot(lease.subject, lease.pool)
    // A holder asking again gets the same lease renewed: the handle it had stops, the new one carries on.
    for (const other of held.get(key) ?? [])
      if (other.holder === lease.holder) {
        other.stop()
        held.get(key)!.delete(other)
      }
    const live = holdLease(
      lease,
      { heartbeatMs: answer.heartbeatMs, expiresInMs: answer.expiresInMs },
      pool,
      leaseParts,
    )
    const set = held.get(key) ?? new Set<LiveLease>()
    held.set(key, set)
    set.add(live)
    if (lease.borrowed) leaseParts.keep(live, lease.token)
    leaseParts.changed(live, 'held')
    return live
  }

  async function answered(answer: LeaseAnswer, pool: FeaturePool, subject: string): Promise<LeaseResult> {
    if (answer.status === 'full')
      return refusal(pool.name, 'pool_full', {
        inUse: answer.inUse,
        limit: answer.seats,
        retryAt: platform.now() + answer.retryAfterMs,
      })
    if (answer.status !== 'held') return refusal(pool.name, 'refused', { detail: answer.reason })
    const lease = await verifier.verifyLease(answer.token, { received: true })
    if (lease.subject !== subject || lease.pool !== pool.name)
      throw new EntitlementError(
        'claims_invalid',
        'the license server handed out a lease for another customer or pool',
      )
    return hold(lease, answer, pool)
  }

  return {
    async acquire(pool: string, options: LeaseOptions = {}): Promise<LeaseResult> {
      checkOptions(pool, options)
      if (server === undefined) throw new TypeError('lease() needs a license server: the server option')
      const entitlements = await parts.load(options.subject)
      const found = entitlements?.pools.get(pool)
      if (entitlements === undefined)
        return refusal(pool, 'unavailable', { detail: 'the customer’s entitlements could not be loaded' })
      if (found === undefined) return refusal(pool, 'not_in_plan')
      const holder = options.holder ?? (found.holder === 'process' ? ownHolder() : undefined)
      if (holder === undefined)
        throw new TypeError(
          `the pool ${pool} is held per ${found.holder}: pass holder (${found.holder === 'machine' ? "this machine's fingerprint" : "the user's id"})`,
        )
      if (options.borrowMs !== undefined && found.borrow === undefined)
        return refusal(pool, 'refused', { detail: `the pool ${pool} lends no seats` })
      const subject = entitlements.subject
      try {
        const answer = await server.acquireLease({
          subject,
          pool,
          holder,
          ...(options.borrowMs === undefined ? {} : { borrow: Math.ceil(options.borrowMs / 1000) }),
          ...(options.metadata === undefined ? {} : { metadata: { ...options.metadata } }),
        })
        return await answered(answer, found, subject)
      } catch (error) {
        const wrapped =
          error instanceof EntitlementError
            ? error
            : new EntitlementError('server_unavailable', String(error), { cause: error })
        // Offline: a borrow taken earlier (this run or one before) still holds.
        const kept = await borrows.resume(subject, pool, holder)
        if (kept !== undefined) return hold(kept, { expiresInMs: kept.expiresAt - platform.now() }, found)
        return refusal(pool, 'unavailable', { error: wrapped, detail: wrapped.message })
      }
    },

    /**
     * The lease a check of a feature in `pool` goes by: the one this client holds for the customer, by the holder
     * asked about when one is named. The hot path of a floating check: one map read.
     */
    find(subject: string, pool: string, holder: string | undefined): Lease | undefined {
      const set = held.get(slot(subject, pool))
      if (set === undefined) return undefined
      for (const live of set) if (holder === undefined || live.holder === holder) return live.lease
      return undefined
    },

    /** Gives back every lease but borrows (which are kept for the next run), and stops renewing. */
    async releaseAll(keepalive = false): Promise<void> {
      const all = [...held.values()].flatMap((set) => [...set])
      await Promise.all(
        all.map((live) => (live.borrowed ? live.stop() : live.release({ keepalive }).then(() => undefined))),
      )
    },
    /** How many leases it holds. */
    count(): number {
      let count = 0
      for (const set of held.values()) count += set.size
      return count
    },
  }
}

export type LeaseKeeper = ReturnType<typeof createLeaseKeeper>
