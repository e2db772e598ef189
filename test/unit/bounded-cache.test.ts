import { describe, expect, it } from 'vitest'
import { createBoundedCache as onMap } from '../../src/client/tokens/bounded-cache.browser.js'
import { createBoundedCache as onLruCache } from '../../src/client/tokens/bounded-cache.js'
import { seeded } from '../helpers.js'

/** Drives both caches with the same random operations and expects the same answers and the same disposals. */
function differential(options: { ttl: boolean; seed: number }) {
  const random = seeded(options.seed)
  // A real epoch: lru-cache takes a start time of 0 as "no time to live".
  let now = 1_700_000_000_000
  const made = [onLruCache, onMap].map((create) => {
    const disposed: string[] = []
    const cache = create<{ v: number }>({
      max: 8,
      ...(options.ttl
        ? { ttlMs: 100, now: () => now }
        : { dispose: (value, key) => disposed.push(`${key}=${value.v}`) }),
    })
    return { cache, disposed }
  })
  const keys = Array.from({ length: 14 }, (_, i) => `k${i}`)
  const values = Array.from({ length: 30 }, (_, v) => ({ v }))
  for (let step = 0; step < 3000; step++) {
    const key = keys[Math.floor(random() * keys.length)]!
    const roll = random()
    if (options.ttl && roll < 0.1) now += Math.floor(random() * 60)
    const value = values[Math.floor(random() * 3)]!
    const answers = made.map(({ cache }) => {
      if (roll < 0.4) {
        cache.set(key, value)
        return 'set'
      }
      if (roll < 0.7) return cache.get(key)?.v
      if (roll < 0.8) return cache.has(key)
      if (roll < 0.9) return cache.delete(key)
      return JSON.stringify([...cache.entries()].map(([k, value]) => [k, value.v]))
    })
    expect(answers[1], `step ${step}`).toEqual(answers[0])
  }
  if (!options.ttl) expect(made[1]!.disposed).toEqual(made[0]!.disposed)
}

describe('the browser build’s bounded cache, beside lru-cache', () => {
  it('evicts, reorders and disposes as lru-cache does', () => {
    for (const seed of [1, 2, 3]) differential({ ttl: false, seed })
  })
  it('forgets values past their time to live as lru-cache does', () => {
    for (const seed of [4, 5, 6]) differential({ ttl: true, seed })
  })
})
