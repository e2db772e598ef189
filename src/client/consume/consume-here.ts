import type { Decision } from '../../core/decision.js'
import { NEVER } from '../../protocol/usage-rules.js'
import type { MemoryUsageStore } from '../../usage/counter-store.js'
import { resourceMetric } from '../../usage/local-usage.js'
import type { Answerer } from '../answers/answer.js'
import type { CheckContext } from '../options.js'
import type { Entry } from '../tokens/cache-entry.js'
import { counterKeyOf, snapshotBaseline, windowFor } from '../usage-window.js'
import type { Reservation, Reservations } from './reservations.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** A grant that waits for its cap's reservation to be written (a storage that writes only asynchronously). */
export interface Uncovered {
  readonly uncovered: { readonly counter: Reservation; readonly amount: number; readonly left: number }
  readonly checked: Decision
}

/**
 * Records a use for the license server (for a resource, when the feature is granted per resource), forgets the
 * feature's memoized answers, and fires the usage alerts it crossed; `used` is the count after it where a fleet
 * said.
 */
export type Use = (
  key: string,
  entry: Entry | undefined,
  feature: string,
  amount: number,
  used?: number,
  resource?: string,
) => void

/**
 * `consume()` in one process, synchronously: the check counts what this process used (the meter's unreported
 * units, or the local counters when there is no meter), so when it allows `amount`, the add fits under the cap;
 * the add is made at once, and one thread means nothing can come between the two.
 */
export function createConsumeHere(parts: {
  readonly answerer: Answerer
  /** Without a meter: where this process counts what it consumed. */
  readonly localCounters: MemoryUsageStore | undefined
  /** With a storage that outlives the process: what makes a grant safe across a crash. */
  readonly reservations: Reservations | undefined
  readonly now: () => number
  readonly use: Use
}) {
  const { answerer, localCounters, reservations, use } = parts

  return function consumeHere(
    entry: Entry | undefined,
    key: string,
    feature: string,
    context: CheckContext,
  ): Decision | Uncovered {
    const checked = answerer.answer(entry, key, feature, context, true)
    if (!checked.allowed || entry === undefined) return checked
    const amount = context.amount ?? 1
    const granted = entry.entitlements.features.get(feature)
    const cap = granted?.cap
    // A per-resource feature: the resource's count goes with the account's (the decision checked both).
    const resource = granted?.per !== undefined ? context.resource : undefined
    if (cap !== undefined && (localCounters !== undefined || reservations !== undefined)) {
      const now = parts.now()
      const { subject } = entry.entitlements
      const windowEnd = windowFor(entry.entitlements, feature, now)
      if (reservations !== undefined) {
        // A kill -9 after this grant must not give the units back: the reservation covering it is written first.
        const counter = reservations.counter(subject, feature, windowEnd)
        const left = checked.remaining ?? amount
        if (!reservations.coverNow(counter, amount, left))
          return { uncovered: { counter, amount, left }, checked }
        reservations.granted(counter, amount)
      }
      if (localCounters !== undefined) {
        localCounters.consumeNow({
          key: counterKeyOf(subject, feature, windowEnd),
          amount,
          limit: cap.limit,
          baseline: snapshotBaseline(cap, now),
          expiresAt: windowEnd === NEVER ? undefined : windowEnd,
          force: true,
        })
      }
    }
    if (cap !== undefined || (resource !== undefined && granted?.per?.cap !== undefined)) {
      // A decision worked out for a context with an amount is never memoized: it is this call's own object.
      ;(checked as Mutable<Decision>).remaining = Math.max(0, checked.remaining! - amount)
    }
    // Counted once the grant is certain (after any reservation), as the account's is.
    if (resource !== undefined && granted?.per?.cap !== undefined && localCounters !== undefined) {
      const now = parts.now()
      const windowEnd = windowFor(entry.entitlements, feature, now)
      localCounters.consumeNow({
        key: counterKeyOf(entry.entitlements.subject, resourceMetric(feature, resource), windowEnd),
        amount,
        limit: Number.MAX_SAFE_INTEGER,
        baseline: 0,
        expiresAt: windowEnd === NEVER ? undefined : windowEnd,
        force: true,
      })
    }
    use(key, entry, feature, amount, undefined, resource)
    return checked
  }
}
