import type { EntitlementError } from '../../core/errors.js'
import type { Lease } from '../../core/lease.js'

/** What `client.lease()` is asked for. */
export interface LeaseOptions {
  /** The customer (a multi-tenant client needs it). */
  subject?: string
  /**
   * Who holds the seat, as the pool counts holders: this machine's fingerprint (a pool held per machine), a user's
   * id (per user). Default, in a pool held per process: an id of this client, the same for each of its leases.
   */
  holder?: string
  /**
   * Borrow the seat for this long (milliseconds, at most the pool's longest borrow): for a machine going offline.
   * A borrow is kept in the client's storage, so a restart offline still holds it; it is never renewed.
   */
  borrowMs?: number
  /** Shown to the license server's admins beside the lease (a host name, a user's name). */
  metadata?: Readonly<Record<string, string>>
}

/** Why a lease could not be had. */
export type LeaseRefusalReason =
  /** Every seat is held: `inUse` of `limit`, and a seat may come free at `retryAt`. */
  | 'pool_full'
  /** The customer's license has no such pool (or the feature is not floating). */
  | 'not_in_plan'
  /** The license server could not be reached, and no borrowed lease is kept for this pool. */
  | 'unavailable'
  /** The license server refused (borrowing not allowed here, a borrow too long, a license that ended). */
  | 'refused'

/** `client.lease()` could not hold a seat. */
export interface LeaseRefusal {
  readonly acquired: false
  readonly pool: string
  readonly reason: LeaseRefusalReason
  /** `pool_full`: seats held, and the pool's size. */
  readonly inUse: number | undefined
  readonly limit: number | undefined
  /** `pool_full`: when a seat may come free (epoch ms, by this clock). */
  readonly retryAt: number | undefined
  /** What the license server said, or the error behind `unavailable`. */
  readonly detail: string | undefined
  readonly error: EntitlementError | undefined
}

/** What a held lease tells: renewed, renewing fails (still valid), lost (no longer valid), revived. */
export interface LeaseEvents {
  /** A renewal succeeded: the lease runs on from now. */
  renewed: { readonly lease: Lease }
  /** A renewal failed; the lease still holds until `validUntil` (and the pool's grace). Retried. */
  degraded: { readonly error: EntitlementError; readonly validUntil: number }
  /**
   * The lease no longer holds: it ran out while renewals failed, or the server said it ended (`gone`). Checks of
   * the pool's features deny `lease_required`. Unless `final`, renewals go on, and may revive it.
   */
  lost: { readonly final: boolean; readonly reason: string }
  /** A lost lease came back (the same id), within the pool's revival window. */
  revived: { readonly lease: Lease }
}

/** `client.lease()` holds a seat: it renews itself until `release()` (or the client's `close()`). */
export interface HeldLease {
  readonly acquired: true
  /** The lease's id: the same across renewals and a revival. */
  readonly id: string
  readonly pool: string
  readonly subject: string
  readonly holder: string
  readonly borrowed: boolean
  /** `held`, `degraded` (renewals failing, still valid), `lost` (not valid; may be revived), `released`. */
  readonly state: 'held' | 'degraded' | 'lost' | 'released'
  /** The verified lease as it stands now (it changes at each renewal). */
  readonly lease: Lease
  /** Listens to `renewed`, `degraded`, `lost` or `revived`; returns a function that stops listening. */
  on<K extends keyof LeaseEvents>(type: K, listener: (event: LeaseEvents[K]) => void): () => void
  /**
   * Gives the seat back and stops renewing; resolves `true` once the license server confirmed. A borrow that
   * cannot be returned (the server out of reach) is kept, and resolves `false`; any other lease ends here anyway
   * and frees its seat on the server when its time runs out.
   */
  release(options?: { keepalive?: boolean }): Promise<boolean>
}

/** `client.lease()`'s answer: a held lease, or why not. */
export type LeaseResult = HeldLease | LeaseRefusal

/** A refusal with the fields its reason has, and the others left empty (every refusal has the same shape). */
export function refusal(
  pool: string,
  reason: LeaseRefusalReason,
  more: Partial<Omit<LeaseRefusal, 'acquired' | 'pool' | 'reason'>> = {},
): LeaseRefusal {
  return {
    acquired: false,
    pool,
    reason,
    inUse: more.inUse,
    limit: more.limit,
    retryAt: more.retryAt,
    detail: more.detail,
    error: more.error,
  }
}
