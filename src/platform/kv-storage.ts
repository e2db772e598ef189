import type { EntitlementStorage } from './storage.js'

/**
 * What `createKvStorage()` needs of a key-value store: the methods of a Cloudflare Workers KV namespace (a
 * `KVNamespace` binding), which Vercel KV and Deno KV wrappers can offer too.
 */
export interface KvNamespaceLike {
  /** The value under `key`, or `null`. */
  get(key: string): Promise<string | null>
  /** Writes `value` under `key`, dropped by the store `expirationTtl` seconds later. */
  put(key: string, value: string, options?: { expirationTtl?: number }): Promise<void>
  /** Removes `key`. */
  delete(key: string): Promise<void>
}

/** Options of {@link createKvStorage}. */
export interface KvStorageOptions {
  /** Put before every key, so one namespace can hold several apps' state. Default `entitle:`. */
  prefix?: string
  /**
   * Seconds after its last write a key is dropped by the store itself (Workers KV's `expirationTtl`, at least 60),
   * so state no client reads any more does not pile up. Default 30 days.
   */
  expirationTtlSec?: number
}

/**
 * The client's storage in a key-value store that outlives an isolate (Cloudflare Workers KV): a cold isolate starts
 * from the last good token and the revocations the last one saw, instead of asking the license server first. It
 * offers no `keys` and no `owners`: each isolate is one writer, and usage an isolate had not sent when it was
 * evicted is not taken over by another (flush it through `ctx.waitUntil(client.flush())` at the end of a request).
 * Workers KV is eventually consistent (a write can take up to a minute to be seen elsewhere) and allows about one
 * write a second per key, which the client's writes stay under (trusted time at most every 5 s, the usage journal
 * at most every `usage.persistIntervalMs`).
 *
 * @example
 * ```ts
 * // A Worker's bindings arrive with the request: make the client at the first one, and keep it.
 * let client: EntitlementsClient | undefined
 * const clientFor = (env: { LICENSES: KvNamespaceLike }) =>
 *   (client ??= createEntitlements({ ...options, storage: createKvStorage(env.LICENSES) }))
 * ```
 */
export function createKvStorage(
  namespace: KvNamespaceLike,
  options: KvStorageOptions = {},
): EntitlementStorage {
  const prefix = options.prefix ?? 'entitle:'
  const expirationTtl = options.expirationTtlSec ?? 30 * 86_400
  if (typeof prefix !== 'string') throw new TypeError('prefix must be a string')
  if (!Number.isInteger(expirationTtl) || expirationTtl < 60)
    throw new TypeError(
      'expirationTtlSec must be a whole number of seconds, at least 60 (the least Workers KV keeps)',
    )
  return {
    async get(key) {
      return (await namespace.get(prefix + key)) ?? undefined
    },
    set: (key, value) => namespace.put(prefix + key, value, { expirationTtl }),
    delete: (key) => namespace.delete(prefix + key),
  }
}
