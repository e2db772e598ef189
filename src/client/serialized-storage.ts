import { EntitlementError } from '../core/errors.js'
import type { EntitlementStorage } from '../platform/storage.js'

/**
 * The app's storage as the client uses it: a failing read is `undefined` and a failing write is reported, never
 * thrown; writes to one key land in the order they were made (an older value never lands after a newer one); and
 * every write is tracked, so `close()` can wait for all of them and a graceful shutdown loses nothing.
 */
export interface SerializedStorage {
  read(key: string): Promise<string | undefined>
  /** Writes `value`, or deletes the key when `value` is `undefined`. */
  write(key: string, value: string | undefined): void
  /** Resolves when every write made so far has landed or failed. */
  settled(): Promise<void>
}

export function createSerializedStorage(
  storage: EntitlementStorage,
  failed: (error: EntitlementError) => void,
  background: (work: Promise<unknown>) => void,
): SerializedStorage {
  const writes = new Set<Promise<unknown>>()
  /** The last write per key: the next write to that key waits for it. */
  const lastWrite = new Map<string, Promise<unknown>>()
  const report = (message: string, cause?: unknown) =>
    failed(new EntitlementError('storage_failed', message, { cause }))

  return {
    async read(key) {
      try {
        return await storage.get(key)
      } catch (error) {
        report(`could not read ${key}`, error)
        return undefined
      }
    },

    write(key, value) {
      const fail = (error: unknown) => report(`could not write ${key}`, error)
      const run = () => (value === undefined ? storage.delete(key) : storage.set(key, value))
      const previous = lastWrite.get(key)
      let done: unknown
      try {
        done = previous === undefined ? run() : previous.then(run)
      } catch (error) {
        fail(error)
        return
      }
      if (!(done instanceof Promise)) return
      const tracked: Promise<unknown> = done.catch(fail).finally(() => {
        writes.delete(tracked)
        if (lastWrite.get(key) === tracked) lastWrite.delete(key)
      })
      writes.add(tracked)
      lastWrite.set(key, tracked)
      background(tracked)
    },

    async settled() {
      await Promise.allSettled([...writes])
    },
  }
}
