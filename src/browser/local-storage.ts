import type { EntitlementStorage } from '../platform/storage.js'

/** The part of the Web Storage API the client uses (`localStorage`, `sessionStorage`, or a stand-in). */
export interface WebStorage {
  /** Returns the stored string, or `null`. */
  getItem(key: string): string | null
  /** Stores a string; may throw when the quota is exceeded. */
  setItem(key: string, value: string): void
  /** Forgets a key. */
  removeItem(key: string): void
}

/**
 * A storage on the browser's `localStorage` (or any Web Storage), with every key prefixed so the client shares the
 * origin's storage politely. A full quota is reported through the client's `on('error')` and checks go on.
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
  return {
    get: (key) => backing().getItem(prefix + key) ?? undefined,
    set: (key, value) => backing().setItem(prefix + key, value),
    delete: (key) => backing().removeItem(prefix + key),
  }
}
