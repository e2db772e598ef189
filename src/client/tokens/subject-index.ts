import { withGetters } from '../../platform/with-getters.js'
import { createBoundedCache } from './bounded-cache.js'
import type { Entry, Verdict } from './cache-entry.js'

/** How long a verdict (no license, or a token proven bad) is remembered before the source is asked again. */
const VERDICT_TTL_MS = 60_000

/**
 * Which customers are in memory, and what is known of those with no usable token: the entries, bounded and least
 * recently used out first, and the verdicts, bounded the same way and remembered for a minute.
 *
 * The bounded cache keeps the order and evicts; a plain `Map` answers the lookups of the hot path. A lookup
 * through lru-cache pays for options and checks this cache never uses (stale entries, background fetches):
 * measured at 1 000 customers, record() took about 1.5x as long with `cache.peek` as with a bare `Map.get`.
 */
export function createSubjectIndex(options: {
  readonly maxSubjects: number
  readonly now: () => number
  /** An entry left memory (evicted, replaced or removed). */
  readonly left: (entry: Entry) => void
}) {
  const index = new Map<string, Entry>()
  // No TTL here: answers enforce exp + stale grace themselves, and `max` bounds memory, so a lookup reads no clock.
  const cache = createBoundedCache<Entry>({
    max: options.maxSubjects,
    dispose: (entry, key) => {
      options.left(entry)
      if (index.get(key) === entry) index.delete(key)
    },
  })
  const verdicts = createBoundedCache<Verdict>({
    max: options.maxSubjects,
    ttlMs: VERDICT_TTL_MS,
    now: options.now,
  })
  /** Customers whose stored token the clock would not accept (expired or not yet valid by it), lately. */
  const clockJudged = createBoundedCache<true>({
    max: options.maxSubjects,
    ttlMs: VERDICT_TTL_MS,
    now: options.now,
  })
  let lookups = 0
  const touchEvery = Math.max(1, Math.floor(options.maxSubjects / 4))

  const subjects = {
    /**
     * The entry, keeping the LRU order roughly, cheaply: an entry is moved up at most once per `touchEvery`
     * lookups. Moving it on every lookup writes to four places in the cache's lists, each a likely CPU cache miss
     * when a hundred thousand customers are held; this way a hot customer pays it once in a while. An entry moved
     * up is among the newest `touchEvery` of the order, so one used at least once every `maxSubjects - touchEvery`
     * lookups is never evicted.
     */
    get(key: string): Entry | undefined {
      const entry = index.get(key)
      if (entry !== undefined && ++lookups - entry.touched >= touchEvery) {
        entry.touched = lookups
        cache.get(key)
      }
      return entry
    },
    /** The entry, if any, without moving it up the LRU order. */
    peek: (key: string) => index.get(key),
    has: (key: string) => index.has(key),
    /** The entry, moved up the LRU order at once: for the cache's own work on it (a renewal, a replacement). */
    current: (key: string) => cache.get(key),
    /** Puts `entry` in memory for `key`, replacing any other; what was known against the customer is forgotten. */
    put(key: string, entry: Entry): void {
      entry.touched = lookups
      cache.set(key, entry)
      index.set(key, entry)
      lookups++
      verdicts.delete(key)
      clockJudged.delete(key)
    },
    /** Takes the customer's entry out of memory. */
    remove: (key: string) => cache.delete(key),
    verdict: (key: string) => verdicts.get(key),
    hasVerdict: (key: string) => verdicts.has(key),
    /** Remembers why the customer has no usable token. */
    judge(key: string, verdict: Verdict): void {
      verdicts.set(key, verdict)
    },
    judgedByClock(key: string): void {
      clockJudged.set(key, true)
    },
    isJudgedByClock: (key: string) => clockJudged.has(key),
    entries: () => cache.entries(),
    values: () => cache.values(),
  }
  return withGetters(subjects, { size: () => cache.size })
}

export type SubjectIndex = ReturnType<typeof createSubjectIndex>
