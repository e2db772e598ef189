/**
 * Where the client keeps what must survive a restart: the last-known-good token per customer, the revocation list
 * and the high-water mark of trusted time. Values are strings (JSON). Implementations may be sync or async; a
 * failing storage is reported through `on('error')` and never fails a check.
 *
 * Built in: {@link createMemoryStorage} (the default), `createFileStorage` from `entitle/node`, and
 * `createLocalStorage` from `entitle/browser`.
 */
export interface EntitlementStorage {
  /** The value stored under `key`, or `undefined`. */
  get(key: string): string | undefined | Promise<string | undefined>
  /** Stores `value` under `key`, replacing what was there. */
  set(key: string, value: string): void | Promise<void>
  /** Forgets `key`. */
  delete(key: string): void | Promise<void>
}

/**
 * A storage that lives as long as the process: the default, and what tests use to simulate a restart.
 *
 * @example
 * ```ts
 * const storage = createMemoryStorage()
 * const client = createEntitlements({ ...options, storage })
 * ```
 */
export function createMemoryStorage(): EntitlementStorage & { readonly size: number } {
  const values = new Map<string, string>()
  return {
    get: (key) => values.get(key),
    set: (key, value) => {
      values.set(key, value)
    },
    delete: (key) => {
      values.delete(key)
    },
    get size() {
      return values.size
    },
  }
}
