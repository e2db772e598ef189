import { withGetters } from '../../platform/with-getters.js'
import type { BoundedCache, BoundedCacheOptions } from './bounded-cache.js'

export type { BoundedCache, BoundedCacheOptions } from './bounded-cache.js'

/**
 * {@link BoundedCache} on a `Map`, whose order of insertion is the order of use: a value read is put back at the
 * end, the first key is the least recently used. The browser build uses it instead of `lru-cache` (18.7 KB
 * minified): a browser app holds its own customer, and a bound of thousands is never near.
 */
export function createBoundedCache<V extends {}>(options: BoundedCacheOptions<V>): BoundedCache<V> {
  const { max, dispose, ttlMs, now = Date.now } = options
  const items = new Map<string, { value: V; at: number }>()

  const expired = (item: { at: number }) => ttlMs !== undefined && now() - item.at > ttlMs
  function live(key: string) {
    const item = items.get(key)
    if (item === undefined) return undefined
    if (!expired(item)) return item
    items.delete(key)
    dispose?.(item.value, key)
    return undefined
  }

  const cache: Omit<BoundedCache<V>, 'size'> = {
    get(key) {
      const item = live(key)
      if (item === undefined) return undefined
      items.delete(key)
      items.set(key, item)
      return item.value
    },
    // As lru-cache: a stale value is not there, but only a get() takes it out.
    has(key) {
      const item = items.get(key)
      return item !== undefined && !expired(item)
    },
    set(key, value) {
      const old = items.get(key)
      items.delete(key)
      items.set(key, { value, at: ttlMs === undefined ? 0 : now() })
      if (old !== undefined && old.value !== value) dispose?.(old.value, key)
      while (items.size > max) {
        const [oldest, item] = items.entries().next().value as [string, { value: V }]
        items.delete(oldest)
        dispose?.(item.value, oldest)
      }
    },
    delete(key) {
      const item = items.get(key)
      if (item === undefined) return false
      items.delete(key)
      dispose?.(item.value, key)
      return true
    },
    *entries() {
      // Most recently used first, as lru-cache iterates.
      for (const [key, item] of [...items].reverse()) if (!expired(item)) yield [key, item.value]
    },
    *values() {
      for (const [, value] of this.entries()) yield value
    },
  }
  return withGetters(cache, {
    size: () => items.size,
  })
}
