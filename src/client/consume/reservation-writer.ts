import type { EntitlementStorage } from '../../platform/storage.js'
import type { OwnerRecord } from '../ownership.js'
import type { Reservation } from './reservations.js'

/** Where the reservations are written, under which key, by whom, and what to do when a write fails. */
export interface ReservationStorage {
  readonly storage: EntitlementStorage
  readonly key: string
  readonly owner: () => OwnerRecord
  readonly now: () => number
  /** A failed write: reported; the grant goes on (a failing disk must not stop the app). */
  readonly failed: (error: unknown) => void
}

/**
 * Writes the cap reservations (`reservations.ts`) where a restart finds them: the counters of windows not yet
 * ended, with their owner. Returns `write()`: at once where the storage writes synchronously (`true`), else after
 * the writes before it, each with the newest state (a promise that resolves once it is written). A counter may
 * grant up to what was last written of it (`durable`). A window that ended is dropped from `counters` at the next
 * write, and `pruned()` told.
 */
export function createReservationWriter(
  parts: ReservationStorage,
  counters: Map<string, Reservation>,
  pruned: () => void,
): () => true | Promise<void> {
  const { storage } = parts
  function text(): string {
    const now = parts.now()
    const held: Record<string, { window: number; reserved: number }> = {}
    for (const [key, counter] of counters) {
      if (counter.window > now) held[key] = { window: counter.window, reserved: counter.reserved }
      else {
        counters.delete(key)
        // Built again as consume() asks: a window that ended leaves nothing behind.
        pruned()
      }
    }
    return JSON.stringify({
      v: 1,
      owner: parts.owner(),
      counters: held,
    })
  }

  /** The reservations as they stand are written: each counter may grant up to what was written. */
  function written(value: Map<Reservation, number>): void {
    for (const [counter, reserved] of value) counter.durable = Math.max(counter.durable, reserved)
  }

  let chain: Promise<void> = Promise.resolve()
  let queued = false

  /**
   * Writes the reservations as they stand: at once where the storage writes synchronously (`true`), else after
   * the writes before it, each with the newest state (a promise that resolves once it is written).
   */
  function write(): true | Promise<void> {
    // A write that fails is reported and taken as done: a failing disk must not stop the app (nor loop a consume()
    // that waits for it); the crash promise then holds only as far as the storage does.
    const run = (): void | Promise<void> => {
      queued = false
      const value = new Map([...counters.values()].map((counter) => [counter, counter.reserved]))
      const done = () => written(value)
      const failed = (error: unknown) => {
        parts.failed(error)
        done()
      }
      try {
        const result = storage.setSync ? storage.setSync(parts.key, text()) : storage.set(parts.key, text())
        if (result instanceof Promise) return result.then(done, failed)
        done()
      } catch (error) {
        failed(error)
      }
    }
    if (storage.setSync !== undefined) {
      run()
      return true
    }
    if (!queued) {
      queued = true
      chain = chain.then(run)
    }
    return chain
  }

  return write
}
