import { withGetters } from './with-getters.js'

/**
 * Where the client keeps what must survive a restart: the last-known-good token per customer, the revocation list,
 * the high-water mark of trusted time, the usage journal and the reservations of metered caps. Values are strings
 * (JSON). Implementations may be sync or async; a failing storage is reported through `on('error')` and never
 * fails a check.
 *
 * Built in: {@link createMemoryStorage} (the default), `createFileStorage` from `entitle/node`, and
 * `createLocalStorage` from `entitle/browser`. The optional members let several processes (or tabs) share one
 * storage safely, and make a write durable before a metered cap grants past it; a storage without them belongs to
 * one process.
 */
export interface EntitlementStorage {
  /** The value stored under `key`, or `undefined`. */
  get(key: string): string | undefined | Promise<string | undefined>
  /** Stores `value` under `key`, replacing what was there. */
  set(key: string, value: string): void | Promise<void>
  /** Forgets `key`. */
  delete(key: string): void | Promise<void>
  /** Optional: every stored key that starts with `prefix` (to find what other writers of the storage left). */
  keys?(prefix: string): string[] | Promise<string[]>
  /**
   * Optional: stores `value` under `key` and returns once it is written (a process killed after it returns keeps
   * it). `consumeSync()` uses it to make a cap's reservation durable before it grants past it.
   */
  setSync?(key: string, value: string): void
  /**
   * Optional, with `keys`: tells the writers of a shared storage apart. With it, each client keeps a journal of its
   * own, and takes over (and sends once) the journal of a writer that is gone: a process that crashed, a tab that
   * closed.
   */
  owners?: StorageOwners
}

/** How the writers of one storage are told apart, and told alive: see {@link EntitlementStorage.owners}. */
export interface StorageOwners {
  /**
   * Called once by each client, with its own id: claims the id for this writer (a browser tab takes a Web Lock
   * on it) and returns what to record beside the client's journal, so others can tell whether it still runs.
   */
  claim(id: string): Readonly<Record<string, string | number>>
  /** Whether the writer that recorded `owner` still runs. When it cannot tell, `true`: nothing is taken. */
  alive(owner: Readonly<Record<string, unknown>>): boolean | Promise<boolean>
}

/**
 * A storage that lives as long as the process: the default, and what tests use to simulate a restart. Two clients
 * on one memory storage are one process's, and a client finds every other writer of it gone: a client made again
 * on it after a simulated crash takes back what the first one left.
 *
 * @example
 * ```ts
 * const storage = createMemoryStorage()
 * const client = createEntitlements({ ...options, storage })
 * ```
 */
export function createMemoryStorage(): EntitlementStorage & { readonly size: number } {
  const values = new Map<string, string>()
  const set = (key: string, value: string) => {
    values.set(key, value)
  }
  const storage: EntitlementStorage = {
    get: (key) => values.get(key),
    set,
    setSync: set,
    delete: (key) => {
      values.delete(key)
    },
    keys: (prefix) => [...values.keys()].filter((key) => key.startsWith(prefix)),
    owners: { claim: () => ({}), alive: () => false },
  }
  return withGetters(storage, {
    size: () => values.size,
  })
}
