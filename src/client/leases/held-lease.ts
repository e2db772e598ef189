import type { FeaturePool } from '../../core/entitlements.js'
import { EntitlementError } from '../../core/errors.js'
import type { Lease } from '../../core/lease.js'
import type { EntitlementVerifier } from '../../core/verify.js'
import type { Platform } from '../../platform/platform.js'
import type { LeaseAnswer } from '../../transport/lease-answer.js'
import type { LicenseServerClient } from '../../transport/license-server-client.js'
import type { HeldLease, LeaseEvents } from './lease-types.js'

/** The least time between two renewal attempts, whatever the pool says: a failing server is not hammered. */
const MIN_RETRY_MS = 500

/** What a held lease needs from the client around it. */
export interface HeldLeaseParts {
  readonly server: LicenseServerClient
  readonly verifier: EntitlementVerifier
  readonly platform: Platform
  /** The lease ended here (released, or lost for good): forget it. */
  readonly ended: (held: LiveLease) => void
  /** A borrow: kept in storage while it is held (`undefined` forgets it). */
  readonly keep: (held: LiveLease, token: string | undefined) => void
  /** What checks answer changed: the lease stopped holding, came back, or was given back. */
  readonly changed: (held: LiveLease, state: 'lost' | 'revived' | 'released') => void
  readonly background: (work: Promise<unknown>) => void
}

/** A held lease as the keeper sees it: the handle, and what stops its timers. */
export interface LiveLease extends HeldLease {
  /** Stops renewing without telling the server (the client closes; the lease runs out by itself). */
  stop(): void
}

/** A held lease's listeners: a listener that throws stops neither the others nor the renewals. */
function createLeaseListeners() {
  const listeners: { [K in keyof LeaseEvents]: Set<(event: LeaseEvents[K]) => void> } = {
    renewed: new Set(),
    degraded: new Set(),
    lost: new Set(),
    revived: new Set(),
  }
  return {
    emit<K extends keyof LeaseEvents>(type: K, event: LeaseEvents[K]): void {
      for (const listener of listeners[type]) {
        try {
          listener(event)
        } catch {
          // A listener's bug must not stop the renewals.
        }
      }
    },
    on<K extends keyof LeaseEvents>(type: K, listener: (event: LeaseEvents[K]) => void): () => void {
      const set = listeners[type] as Set<typeof listener>
      set.add(listener)
      return () => {
        set.delete(listener)
      }
    },
  }
}

const asEntitlementError = (error: unknown) =>
  error instanceof EntitlementError
    ? error
    : new EntitlementError('server_unavailable', `the lease could not be renewed (${String(error)})`, {
        cause: error,
      })

/** Where a handle keeps what its accessors read: the lease and state its renewals change. */
const READS = Symbol()
interface HandleReads {
  readonly lease: () => Lease
  readonly state: () => HeldLease['state']
}
type Handle = { readonly [READS]: HandleReads }
/**
 * A handle's accessors, shared by every handle: V8 keeps handles on one map (fast mode) only if their accessors are
 * the very same functions, and a check of a pool's feature reads `lease` of the holder's handle.
 */
function readState(this: Handle): HeldLease['state'] {
  return this[READS].state()
}
function readLease(this: Handle): Lease {
  return this[READS].lease()
}

/** `[0.8, 1)` of `ms`: renewals of many holders spread out instead of arriving together. */
const jitter = (ms: number, random: () => number) => ms * (0.8 + random() * 0.2)

/**
 * One seat held: renews on its own before the lease ends (at the pool's heartbeat, from the server's "seconds
 * left", with jitter), says when renewing fails (`degraded`), when the lease stops holding (`lost`, at the end of
 * the lease plus the pool's grace, by a timer as well as at every check), and when a renewal brings a lost lease
 * back (`revived`). A borrow is never renewed: it holds until its end, or until it is given back.
 */
export function holdLease(
  first: Lease,
  timing: { readonly heartbeatMs: number | undefined; readonly expiresInMs: number },
  pool: FeaturePool,
  parts: HeldLeaseParts,
): LiveLease {
  const { server, verifier, platform } = parts
  const { emit, on } = createLeaseListeners()
  let lease = first
  let state: HeldLease['state'] = 'held'
  let renewTimer: unknown
  let lostTimer: unknown
  let failures = 0
  /** Until when renewing may still revive the lease (its end, plus the pool's revival window). */
  let reviveUntil = 0

  function clearTimers(): void {
    platform.clearTimeout(renewTimer)
    platform.clearTimeout(lostTimer)
    renewTimer = lostTimer = undefined
  }

  /** The lease now runs to `lease.validUntil`: when it would stop holding, and when to renew. */
  function schedule(expiresInMs: number, heartbeatMs: number | undefined): void {
    clearTimers()
    const now = platform.now()
    const end = lease.validUntil + (lease.borrowed ? 0 : pool.graceMs)
    reviveUntil = lease.validUntil + pool.revivalMs
    lostTimer = platform.setTimeout(
      () => lose(false, 'the lease ran out while it could not be renewed'),
      end - now,
    )
    if (lease.borrowed) return
    const every = Math.min(heartbeatMs ?? pool.heartbeatMs, expiresInMs / 2)
    renewTimer = platform.setTimeout(renew, Math.max(MIN_RETRY_MS, jitter(every, platform.random)))
  }

  function lose(final: boolean, reason: string): void {
    if (state === 'released') return
    const was = state
    state = 'lost'
    if (final) {
      clearTimers()
      parts.keep(handle, undefined)
      parts.ended(handle)
    }
    if (was !== 'lost' || final) {
      emit('lost', { final, reason })
      if (was !== 'lost') parts.changed(handle, 'lost')
    }
  }

  async function take(answer: LeaseAnswer & { status: 'held' }): Promise<void> {
    const next = await verifier.verifyLease(answer.token, { received: true })
    if (next.id !== lease.id || next.pool !== lease.pool || next.subject !== lease.subject)
      throw new EntitlementError('claims_invalid', 'the renewed lease is for another lease, pool or customer')
    const wasLost = state === 'lost'
    lease = next
    state = 'held'
    failures = 0
    schedule(answer.expiresInMs, answer.heartbeatMs)
    if (wasLost || answer.revived) {
      emit('revived', { lease })
      parts.changed(handle, 'revived')
    } else emit('renewed', { lease })
  }

  function retry(error: unknown): void {
    failures++
    const wrapped = asEntitlementError(error)
    const now = platform.now()
    if (state === 'held' && now < lease.validUntil + pool.graceMs) {
      state = 'degraded'
      emit('degraded', { error: wrapped, validUntil: lease.validUntil })
    }
    if (now >= Math.max(reviveUntil, lease.validUntil + pool.graceMs)) {
      lose(true, 'the lease ended, and could not be renewed within its revival window')
      return
    }
    // Back off, but try again before the lease ends: a network blip shorter than the lease keeps it.
    const base = Math.min(pool.heartbeatMs, 1000 * 2 ** Math.min(failures - 1, 6))
    const delay = Math.max(MIN_RETRY_MS, jitter(base, platform.random))
    platform.clearTimeout(renewTimer)
    renewTimer = platform.setTimeout(renew, delay)
  }

  async function renewNow(): Promise<void> {
    try {
      const answer = await server.renewLease(lease.id)
      if (state === 'released') return
      if (answer.status === 'held') await take(answer)
      else if (answer.status === 'gone') lose(true, answer.reason)
      // Refused or full (not an answer a renewal should get): tried again, as an outage is.
      else retry(new EntitlementError('server_rejected', `the lease renewal was refused (${answer.status})`))
    } catch (error) {
      if (state !== 'released') retry(error)
    }
  }

  function renew(): void {
    renewTimer = undefined
    if (state !== 'released') parts.background(renewNow())
  }

  const methods: Omit<LiveLease, 'id' | 'state' | 'lease'> = {
    acquired: true,
    pool: first.pool,
    subject: first.subject,
    holder: first.holder,
    borrowed: first.borrowed,
    on,
    async release(options) {
      if (state === 'released') return true
      let returned = true
      try {
        await server.releaseLease(lease.id, options?.keepalive === true)
      } catch {
        returned = false
        // A borrow that cannot be given back is still the holder's: it stays held, and kept.
        if (lease.borrowed && platform.now() < lease.validUntil) return false
      }
      clearTimers()
      state = 'released'
      parts.keep(handle, undefined)
      parts.ended(handle)
      parts.changed(handle, 'released')
      return returned
    },
    stop: clearTimers,
  }
  // Not through withGetters (see it): the lease keeper's chunk would then share it with the main build, and every
  // browser bundle's first load would carry it in a chunk of its own. The same accessors for every handle, as there.
  const reads: HandleReads = { lease: () => lease, state: () => state }
  const handle = Object.defineProperties(methods, {
    [READS]: { value: reads },
    // The id stays the same across renewals (take() refuses one that does not).
    id: { value: first.id, enumerable: true },
    state: { get: readState, enumerable: true },
    lease: { get: readLease, enumerable: true },
  }) as LiveLease
  schedule(timing.expiresInMs, timing.heartbeatMs)
  return handle
}
