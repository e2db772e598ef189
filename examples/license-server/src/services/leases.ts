import { randomBytes } from 'node:crypto'
import type { Pool } from 'entitle'
import { signLeaseToken } from 'entitle/protocol'
import type { Catalog } from '../catalog.js'
import { DomainError } from '../errors.js'
import type { Keyring } from '../keys.js'
import type { LeaseRow, Repository } from '../repository.js'
import type { EventBus } from './events.js'
import { activeLicense, pricedEntitlement } from './licenses.js'

/** What a holder asks for: a seat of `pool`, for a while or (a borrow) for `borrowSec`. */
export interface LeaseRequest {
  readonly pool: string
  readonly holder: string
  readonly borrowSec?: number | undefined
  readonly metadata?: Record<string, string> | undefined
}

/** A lease as the holder receives it: the signed token and, by this server's clock, how long it has left. */
export interface LeaseAnswer {
  readonly id: string
  readonly pool: string
  readonly holder: string
  readonly lease: string
  /** Seconds left by this server's clock: a client with a skewed clock schedules its renewal from this. */
  readonly expiresIn: number
  /** How often to renew, in seconds (the pool's heartbeat); absent for a borrow, which is never renewed. */
  readonly heartbeat?: number
  readonly expiresAt: string
  readonly borrowed: boolean
  /** The lease had ended and was brought back within the pool's revival window. */
  readonly revived: boolean
}

/** Signs a lease's current state as the holder receives it. */
function createLeaseSigner(options: {
  keyring: Keyring
  issuer: string
  audience: string
  now: () => number
}) {
  const { keyring, now } = options
  return async function answer(row: LeaseRow, pool: Pool, revived: boolean): Promise<LeaseAnswer> {
    const { kid, key } = await keyring.signer()
    const issuedAt = Math.floor(now() / 1000)
    const expiresAt = Math.max(issuedAt + 1, Math.floor(row.expires_at / 1000))
    const borrowed = row.borrowed === 1
    const lease = await signLeaseToken(
      {
        issuer: options.issuer,
        audience: options.audience,
        subject: row.customer_id,
        lease: { id: row.id, pool: row.pool, holder: row.holder, ...(borrowed ? { borrowed: true } : {}) },
        issuedAt,
        expiresAt,
      },
      { key, kid, alg: 'EdDSA' },
    )
    return {
      id: row.id,
      pool: row.pool,
      holder: row.holder,
      lease,
      expiresIn: expiresAt - issuedAt,
      ...(borrowed ? {} : { heartbeat: pool.heartbeat }),
      expiresAt: new Date(expiresAt * 1000).toISOString(),
      borrowed,
      revived,
    }
  }
}

/** The pool is full: how many hold it, of how many, and when the first seat may come free. */
function full(pool: Pool, live: readonly LeaseRow[], at: number, detail: string): DomainError {
  const soonest = Math.min(...live.map((row) => row.expires_at))
  const retryAfter = Math.max(1, Math.ceil((soonest - at) / 1000))
  return new DomainError(
    'conflict',
    'Pool full',
    detail,
    { inUse: live.length, seats: pool.seats, retryAfter },
    retryAfter,
  )
}

const about = (row: LeaseRow) => ({ lease: row.id, pool: row.pool, holder: row.holder })

/** What counting seats needs: the tables, the events of the transaction, the clock. */
interface SeatDeps {
  readonly repo: Repository
  readonly events: EventBus
  readonly now: () => number
}

/** Ends the leases whose time ran out (of one pool, or all), each told on its customer's stream once. */
export function endLapsed(
  { repo, events }: SeatDeps,
  at: number,
  scope: { customerId: string; pool: string } | null,
): number {
  const lapsed = repo.lapsedLeases(at, scope)
  for (const row of lapsed) {
    repo.endLease(row.id, 'expired', row.expires_at)
    events.record('lease.expired', row.customer_id, about(row))
  }
  return lapsed.length
}

/** The seat, or the reason there is none, decided in one locked transaction. */
function take(
  deps: SeatDeps,
  customerId: string,
  request: LeaseRequest,
  pool: Pool,
): { row: LeaseRow; created: boolean } {
  const { repo, events, now } = deps
  const borrowing = request.borrowSec !== undefined
  return events.transaction(() => {
    const at = now()
    endLapsed(deps, at, { customerId, pool: request.pool })
    let live = repo.liveLeases(customerId, request.pool, at)
    // A holder that borrows the seat it holds gives the lease back for the borrow: one seat, not two.
    const held = borrowing
      ? live.find((row) => row.holder === request.holder && row.borrowed === 0)
      : undefined
    if (held !== undefined) {
      repo.endLease(held.id, 'released', at)
      events.record('lease.released', customerId, about(held))
      live = live.filter((row) => row !== held)
    }
    // A holder asking again (a restart, a second process on one machine) gets the seat it holds, renewed.
    const own = live.find((row) => row.holder === request.holder && (row.borrowed === 1) === borrowing)
    if (own !== undefined && !borrowing) {
      repo.extendLease(own.id, at, at + pool.ttl * 1000)
      return { row: repo.lease(own.id)!, created: false }
    }
    if (own !== undefined) return { row: own, created: false }
    if (live.length >= pool.seats)
      throw full(pool, live, at, `${live.length} of ${pool.seats} seats of ${request.pool} are held`)
    if (borrowing) {
      const lent = live.filter((row) => row.borrowed === 1).length
      const lendable = pool.seats - (pool.borrow?.reserve ?? 0)
      if (lent >= lendable)
        throw full(
          pool,
          live,
          at,
          `${lent} of the ${lendable} seats of ${request.pool} that may be lent are lent`,
        )
    }
    const row = {
      id: `ls_${randomBytes(12).toString('hex')}`,
      customer_id: customerId,
      pool: request.pool,
      holder: request.holder,
      metadata: request.metadata === undefined ? null : JSON.stringify(request.metadata),
      borrowed: borrowing ? 1 : 0,
      acquired_at: at,
      heartbeat_at: at,
      expires_at: at + (borrowing ? request.borrowSec! : pool.ttl) * 1000,
    }
    repo.insertLease(row)
    return { row: repo.lease(row.id)!, created: true }
  }, true)
}

/**
 * Floating-license leases. Every seat count happens inside one `BEGIN IMMEDIATE` transaction that first ends the
 * leases whose time ran out (and says so on the customer's stream), so 50 concurrent acquires of a pool of 10
 * yield exactly 10 and a crashed holder's seat is free the moment its lease ends, with no job to wait for. The
 * server's clock is the only clock: a renewal answers with the seconds left.
 */
export function createLeaseService(options: {
  repo: Repository
  catalog: Catalog
  keyring: Keyring
  events: EventBus
  issuer: string
  audience: string
  now: () => number
}) {
  const { repo, catalog, events, now } = options
  const answer = createLeaseSigner(options)

  /** The pool as this customer's license sells it, or why there is none. */
  function poolOf(customerId: string, name: string): Pool {
    const license = activeLicense(repo, customerId)
    const pool = pricedEntitlement(catalog, repo, license).ent.pools?.[name]
    if (pool === undefined)
      throw new DomainError('not_found', 'Unknown pool', `the license of ${customerId} has no pool ${name}`)
    return pool
  }

  /** The lease `id` as `customerId` may see it. */
  function owned(customerId: string | null, id: string): LeaseRow {
    const row = repo.lease(id)
    if (row === undefined || (customerId !== null && row.customer_id !== customerId))
      throw new DomainError('not_found', 'Unknown lease', `no lease ${id}`)
    return row
  }

  return {
    /** A seat of the pool, new (`created`) or the one this holder already holds, renewed. */
    async acquire(customerId: string, request: LeaseRequest) {
      const pool = poolOf(customerId, request.pool)
      if (request.borrowSec !== undefined) {
        if (pool.borrow === undefined)
          throw new DomainError('invalid', 'Borrowing not allowed', `the pool ${request.pool} lends no seats`)
        if (request.borrowSec > pool.borrow.max)
          throw new DomainError(
            'invalid',
            'Borrow too long',
            `the pool ${request.pool} lends for at most ${pool.borrow.max} s`,
            { max: pool.borrow.max },
          )
      }
      const { row, created } = take(options, customerId, request, pool)
      return { created, answer: await answer(row, pool, false) }
    },

    /**
     * Renews a lease from now; one that ended comes back within the pool's revival window if a seat is free. A
     * borrow is not renewed: its answer is the lease as it stands. Else the lease is gone (`410`).
     */
    async heartbeat(customerId: string | null, id: string) {
      const first = owned(customerId, id)
      if (first.state === 'released')
        throw new DomainError('gone', 'Lease ended', `the lease ${id} was released`)
      const pool = poolOf(first.customer_id, first.pool)
      const outcome = events.transaction(() => {
        const at = now()
        endLapsed(options, at, { customerId: first.customer_id, pool: first.pool })
        const row = repo.lease(id)!
        if (row.borrowed === 1) {
          if (row.state !== 'live') return { gone: 'the borrow ended' }
          return { row, revived: false }
        }
        if (row.state === 'live') {
          repo.extendLease(id, at, at + pool.ttl * 1000)
          return { row: repo.lease(id)!, revived: false }
        }
        if (row.state === 'released') return { gone: `the lease ${id} was released` }
        if (at >= row.expires_at + (pool.revival ?? 0) * 1000)
          return { gone: `the lease ${id} ended and its revival window passed` }
        const live = repo.liveLeases(row.customer_id, row.pool, at)
        if (live.length >= pool.seats) return { gone: `the lease ${id} ended and its seat was taken` }
        repo.extendLease(id, at, at + pool.ttl * 1000)
        events.record('lease.revived', row.customer_id, about(row))
        return { row: repo.lease(id)!, revived: true }
      }, true)
      if ('gone' in outcome) throw new DomainError('gone', 'Lease ended', outcome.gone)
      return answer(outcome.row, pool, outcome.revived)
    },

    /** Gives the seat back (a holder closing, or an admin freeing it). Releasing twice is not an error. */
    release(customerId: string | null, id: string) {
      const row = owned(customerId, id)
      if (row.state === 'released') return about(row)
      events.transaction(() => {
        repo.endLease(id, 'released', now())
        events.record('lease.released', row.customer_id, about(row))
      })
      return { ...about(row), customerId: row.customer_id }
    },

    /** A customer's leases holding seats now: who, since when, until when, last renewed, what they said. */
    list(customerId: string, pool: string | null) {
      const at = now()
      return repo.customerLeases(customerId, pool, at).map((row) => ({
        id: row.id,
        pool: row.pool,
        holder: row.holder,
        borrowed: row.borrowed === 1,
        since: new Date(row.acquired_at).toISOString(),
        lastHeartbeat: new Date(row.heartbeat_at).toISOString(),
        expiresAt: new Date(row.expires_at).toISOString(),
        metadata: row.metadata === null ? {} : (JSON.parse(row.metadata) as Record<string, string>),
      }))
    },

    /** Ends every lease whose time ran out, for every customer: the periodic sweep. */
    sweep: () => events.transaction(() => endLapsed(options, now(), null), true),
  }
}

export type LeaseService = ReturnType<typeof createLeaseService>
