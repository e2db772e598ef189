import { counterKeyOf } from '../usage-window.js'
import { createReservationWriter, type ReservationStorage } from './reservation-writer.js'

/** What this client holds of one metered cap's window. */
export interface Reservation {
  /** The counter's key (customer, metric, window), as the reservations and the journal write it. */
  readonly key: string
  readonly window: number
  /** Units `consume()` granted in the window (taken over from a writer that is gone included). */
  granted: number
  /** Units it may grant before it must write again: what a crash can have granted, at most. */
  reserved: number
  /** The reservation as last written: granting stays within it. */
  durable: number
  /** Units a writer that is gone may have granted and no journal holds: counted against the cap, never sent. */
  unknown: number
}

/** A reservation grows by at least this share of what is left of the cap: a write per 1/16 of it, at most. */
const BLOCK_SHARE = 16

/**
 * A metered cap that a `kill -9` cannot reset. Before `consume()` grants units past what it reserved, it writes a
 * larger reservation, and waits until it is written (`consumeSync()` writes synchronously, where the storage can);
 * the usage journal records what was granted at each of its writes. After a crash the next start counts, per
 * window, what was reserved and no journal holds (`reserved - granted at the last journal write`) as used: the cap
 * holds, and since nothing proves those units were used, none is ever sent to the license server. A reservation
 * grows by 1/16 of what is left of the cap at a time, so a crash costs at most that much of it, and a clean
 * `close()` gives back what was not used.
 */
export function createReservations(parts: ReservationStorage) {
  const counters = new Map<string, Reservation>()
  /**
   * The counters by customer and metric: `consume()` finds its own with two lookups of strings it already holds,
   * where the counter's key would cost two encodings and a hash of a new string each call.
   */
  const bySubject = new Map<string, Map<string, Reservation>>()
  /** Whether any counter holds units a gone writer left: only then do checks add them. */
  let inherited = 0

  const write = createReservationWriter(parts, counters, () => bySubject.clear())

  function counterOf(key: string, window: number): Reservation {
    let counter = counters.get(key)
    if (counter === undefined || counter.window !== window) {
      counter = { key, window, granted: 0, reserved: 0, durable: 0, unknown: 0 }
      counters.set(key, counter)
    }
    return counter
  }

  /** Grows the reservation to cover `amount` more, by a block of what is `left`. */
  function grow(counter: Reservation, amount: number, left: number): void {
    if (counter.granted + amount <= counter.reserved) return
    counter.reserved = counter.granted + Math.max(amount, Math.ceil(left / BLOCK_SHARE))
  }

  return {
    /** The counter of `subject`'s `metric` in the window ending at `window`. */
    counter(subject: string, metric: string, window: number): Reservation {
      let byMetric = bySubject.get(subject)
      if (byMetric === undefined) {
        byMetric = new Map()
        bySubject.set(subject, byMetric)
      }
      let counter = byMetric.get(metric)
      // A counter pruned when its window ended left with all of bySubject (see text()): what is here is current.
      if (counter === undefined || counter.window !== window) {
        counter = counterOf(counterKeyOf(subject, metric, window), window)
        byMetric.set(metric, counter)
      }
      return counter
    },

    /**
     * For `consumeSync()`: whether granting `amount` of the counter is safe across a crash now. A reservation that
     * must grow is written at once where the storage writes synchronously; otherwise the write starts and this
     * answers `false` until it is done.
     */
    coverNow(counter: Reservation, amount: number, left: number): boolean {
      if (counter.granted + amount <= counter.durable) return true
      grow(counter, amount, left)
      // Not durable yet where the storage writes only asynchronously: this grant waits, a later one finds it written.
      return write() === true && counter.granted + amount <= counter.durable
    },

    /** For `consume()`: resolves once granting `amount` of the counter is safe across a crash. */
    async cover(counter: Reservation, amount: number, left: number): Promise<void> {
      if (counter.granted + amount <= counter.durable) return
      grow(counter, amount, left)
      await write()
    },

    /** `amount` was granted. */
    granted(counter: Reservation, amount: number): void {
      counter.granted += amount
    },

    /** Whether any counter holds units a gone writer may have granted: a check adds them only then. */
    hasUnknown: () => inherited > 0,

    /** Units of the counter that a gone writer may have granted: added to what a check counts as used. */
    unknown(key: string, now: number): number {
      if (inherited === 0) return 0
      const counter = counters.get(key)
      return counter === undefined || counter.window <= now ? 0 : counter.unknown
    },

    /** What was granted per counter: recorded with each journal write. */
    grantedNow(): Record<string, number> {
      const granted: Record<string, number> = {}
      for (const [key, counter] of counters) granted[key] = counter.granted
      return granted
    },

    /**
     * Takes over what a gone writer reserved: what no journal of it records as granted may have been granted, and
     * counts as used here. `journaled` is what its journal recorded, per counter. Resolves once written.
     */
    async adopt(
      reservations: string | undefined,
      journaled: Readonly<Record<string, number>>,
    ): Promise<void> {
      let left: { counters?: Record<string, { window?: unknown; reserved?: unknown }> } | undefined
      try {
        left = reservations === undefined ? undefined : JSON.parse(reservations)
      } catch {
        return
      }
      const now = parts.now()
      let adopted = false
      for (const [key, held] of Object.entries(left?.counters ?? {})) {
        const { window, reserved } = held ?? {}
        if (typeof window !== 'number' || typeof reserved !== 'number' || window <= now) continue
        const lost = reserved - (journaled[key] ?? 0)
        if (!(lost > 0)) continue
        const counter = counterOf(key, window)
        counter.unknown += lost
        counter.granted += lost
        counter.reserved = Math.max(counter.reserved, counter.granted)
        inherited++
        adopted = true
      }
      if (adopted) await write()
    },

    /** At `close()`: gives back what was reserved and not granted. */
    async release(): Promise<void> {
      for (const counter of counters.values()) counter.reserved = counter.granted
      if (counters.size > 0) await write()
    },
  }
}

export type Reservations = ReturnType<typeof createReservations>
