import { LRUCache } from 'lru-cache'

/**
 * What the client needs of a cache: a bound, least recently used out first, a callback when a value leaves, and
 * an optional time to live on the injected clock. Node and servers get it from `lru-cache`; the browser build
 * swaps in `bounded-cache.browser.ts` (a `Map`, a few hundred bytes), since a browser app holds one customer.
 */
export interface BoundedCache<V> {
  /** The value, moved to most recently used. */
  get(key: string): V | undefined
  has(key: string): boolean
  set(key: string, value: V): void
  delete(key: string): boolean
  entries(): IterableIterator<[string, V]>
  values(): IterableIterator<V>
  readonly size: number
}

export interface BoundedCacheOptions<V> {
  max: number
  /** Called when a value leaves: evicted, deleted, or replaced by another. */
  dispose?: (value: V, key: string) => void
  /** Values older than this are gone, by `now`. */
  ttlMs?: number
  now?: () => number
}

export function createBoundedCache<V extends {}>(options: BoundedCacheOptions<V>): BoundedCache<V> {
  const { max, dispose, ttlMs, now } = options
  return new LRUCache<string, V>({
    max,
    ...(dispose ? { dispose: (value: V, key: string) => dispose(value, key) } : {}),
    ...(ttlMs !== undefined
      ? {
          ttl: ttlMs,
          ...(now ? { perf: { now } } : {}),
          // Read the injected clock on every lookup: lru-cache otherwise caches "now" behind a real timer.
          ttlResolution: 0,
        }
      : {}),
  }) as unknown as BoundedCache<V>
}
