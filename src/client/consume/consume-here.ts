import type { Decision } from '../../core/decision.js'
import { NEVER } from '../../protocol/usage-rules.js'
import type { MemoryUsageStore } from '../../usage/counter-store.js'
import type { Answerer } from '../answers/answer.js'
import type { CheckContext } from '../options.js'
import type { Entry } from '../tokens/cache-entry.js'
import { counterKeyOf, snapshotBaseline, windowFor } from '../usage-window.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * `consume()` in one process, synchronously: the check counts what this process used (the meter's unreported
 * units, or the local counters when there is no meter), so when it allows `amount`, the add fits under the cap;
 * the add is made at once, and one thread means nothing can come between the two.
 */
export function createConsumeHere(parts: {
  readonly answerer: Answerer
  /** Without a meter: where this process counts what it consumed. */
  readonly localCounters: MemoryUsageStore | undefined
  readonly now: () => number
  /** Records the use for the license server and forgets the feature's memoized answer. */
  readonly use: (key: string, entry: Entry | undefined, feature: string, amount: number) => void
}) {
  const { answerer, localCounters, use } = parts

  return function consumeHere(
    entry: Entry | undefined,
    key: string,
    feature: string,
    context: CheckContext,
  ): Decision {
    const checked = answerer.answer(entry, key, feature, context, true)
    if (!checked.allowed || entry === undefined) return checked
    const amount = context.amount ?? 1
    const cap = entry.entitlements.features.get(feature)?.cap
    if (cap !== undefined) {
      if (localCounters !== undefined) {
        const now = parts.now()
        const windowEnd = windowFor(entry.entitlements, feature, now)
        localCounters.consumeNow({
          key: counterKeyOf(entry.entitlements.subject, feature, windowEnd),
          amount,
          limit: cap.limit,
          baseline: snapshotBaseline(cap, now),
          expiresAt: windowEnd === NEVER ? undefined : windowEnd,
          force: true,
        })
      }
      // A decision worked out for a context with an amount is never memoized: it is this call's own object.
      ;(checked as Mutable<Decision>).remaining = Math.max(0, checked.remaining! - amount)
    }
    use(key, entry, feature, amount)
    return checked
  }
}
