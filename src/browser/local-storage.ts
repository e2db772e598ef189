import type { EntitlementStorage, StorageOwners } from '../platform/storage.js'

/** The part of the Web Storage API the client uses (`localStorage`, `sessionStorage`, or a stand-in). */
export interface WebStorage {
  /** Returns the stored string, or `null`. */
  getItem(key: string): string | null
  /** Stores a string; may throw when the quota is exceeded. */
  setItem(key: string, value: string): void
  /** Forgets a key. */
  removeItem(key: string): void
  /** How many keys are stored (with `key(i)`, to list them). */
  readonly length?: number
  /** The name of the `index`-th key, or `null`. */
  key?(index: number): string | null
}

/** The Web Locks API, where the browser has it: a lock is held until released or until its tab goes away. */
interface LockManager {
  request(name: string, callback: () => Promise<unknown>): Promise<unknown>
  query(): Promise<{ held?: ReadonlyArray<{ name?: string }> }>
}

/**
 * Tabs told apart by Web Locks: each client holds a lock named for its id for as long as its page lives, so a
 * tab that closed or crashed lets go of it and its journal can be taken. Without Web Locks, `undefined`: the
 * storage is then one tab's.
 */
function tabOwners(prefix: string): StorageOwners | undefined {
  const locks = (globalThis as { navigator?: { locks?: LockManager } }).navigator?.locks
  if (locks === undefined) return undefined
  return {
    claim(id) {
      const lock = `${prefix}owner:${id}`
      // Held until the page goes away: the callback never resolves.
      void locks.request(lock, () => new Promise(() => {})).catch(() => {})
      return { lock }
    },
    async alive(owner) {
      const held = (await locks.query()).held ?? []
      return typeof owner.lock !== 'string' || held.some((lock) => lock.name === owner.lock)
    },
  }
}

/**
 * A storage on the browser's `localStorage` (or any Web Storage), with every key prefixed so the client shares the
 * origin's storage politely. A full quota is reported through the client's `on('error')` and checks go on. Tabs of
 * one origin share it: each keeps its own usage journal, and a tab that starts (or runs) takes over, and sends once,
 * the journal of a tab that has gone (Web Locks tell which).
 *
 * @example
 * ```ts
 * import { createLocalStorage } from 'entitle/browser'
 * const client = createEntitlements({ ...options, storage: createLocalStorage() })
 * ```
 */
export function createLocalStorage(prefix = 'entitle/', storage?: WebStorage): EntitlementStorage {
  const backing = (): WebStorage => {
    const found = storage ?? (globalThis as { localStorage?: WebStorage }).localStorage
    if (!found) throw new Error('no localStorage here: pass a Web Storage to createLocalStorage')
    return found
  }
  const set = (key: string, value: string) => backing().setItem(prefix + key, value)
  const owners = tabOwners(prefix)
  return {
    get: (key) => backing().getItem(prefix + key) ?? undefined,
    set,
    setSync: set,
    delete: (key) => backing().removeItem(prefix + key),
    keys(start) {
      const web = backing()
      const found: string[] = []
      for (let i = 0; i < (web.length ?? 0); i++) {
        const name = web.key?.(i)
        if (name?.startsWith(prefix + start)) found.push(name.slice(prefix.length))
      }
      return found
    },
    ...(owners ? { owners } : {}),
  }
}
