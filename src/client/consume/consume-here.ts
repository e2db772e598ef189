import { usedInWindow } from '../../core/cap-usage.js'
import { creditCost } from '../../core/credits.js'
import type { Decision } from '../../core/decision.js'
import type { Entitlements } from '../../core/entitlements.js'
import { NEVER } from '../../protocol/usage-rules.js'
import type { MemoryUsageStore } from '../../usage/counter-store.js'
import { resourceMetric } from '../../usage/local-usage.js'
import type { Answerer } from '../answers/answer.js'
import { creditCounterKey } from '../credits/credit-book.js'
import type { CheckContext } from '../options.js'
import type { Entry } from '../tokens/cache-entry.js'
import { counterKeyOf, windowFor } from '../usage-window.js'
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

  /**
   * What a consume of a costed feature spends, counted here: a reservation covering it where the storage outlives
   * the process (none needs growing when `undefined` comes back, else the one that does), and the in-process count.
   */
  function creditsOf(entitlements: Entitlements, feature: string, amount: number, checked: Decision) {
    const cost = entitlements.costs.size === 0 ? undefined : entitlements.costs.get(feature)
    if (cost === undefined || checked.credits === undefined) return undefined
    const price = creditCost(cost, amount)
    const counter = reservations?.counter(entitlements.subject, cost.type, NEVER)
    const balance = entitlements.credits.get(cost.type)!
    const left = Math.max(price, checked.credits.available + balance.overdraft)
    return { type: cost.type, price, counter, left, baseline: balance.spent }
  }

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
    const credits = creditsOf(entry.entitlements, feature, amount, checked)
    // Every reservation the grant needs is written before any is counted: a retry after a write must not count twice.
    if (
      credits?.counter !== undefined &&
      !reservations!.coverNow(credits.counter, credits.price, credits.left)
    )
      return { uncovered: { counter: credits.counter, amount: credits.price, left: credits.left }, checked }
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
          baseline: usedInWindow(entry.entitlements.usage.get(feature), now),
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
    if (credits !== undefined) {
      if (credits.counter !== undefined) reservations!.granted(credits.counter, credits.price)
      localCounters?.consumeNow({
        key: creditCounterKey(entry.entitlements.subject, credits.type),
        amount: credits.price,
        limit: Number.MAX_SAFE_INTEGER,
        baseline: credits.baseline,
        expiresAt: undefined,
        force: true,
      })
    }
    use(key, entry, feature, amount, undefined, resource)
    return checked
  }
}
