import type { Decision } from '../../core/decision.js'
import type { Platform } from '../../platform/platform.js'
import { withGetters } from '../../platform/with-getters.js'
import type { DecisionSummaryEvent, FeatureDecisionCounts } from '../options.js'

/** Feature names may come from user input: past this many, counts go to '(other)' instead of growing forever. */
const MAX_COUNTED_FEATURES = 1000

/** Aggregated decision counts per feature and reason: what `stats()` and the `decision` event report. */
export interface DecisionStats {
  /** Counts one decision and returns it. */
  count(decision: Decision): Decision
  /** Moves one counted decision from `before`'s bucket to `after`'s (consume() corrects what a check counted). */
  recount(before: Decision, after: Decision): Decision
  /** Takes back one counted decision (a consume() decided again once its reservation was written). */
  uncount(decision: Decision): void
  /**
   * Counts one decision `times` times at once: a memoized answer's hits, counted lazily so the hot path pays one
   * increment (adding them one by one cost each hit a second, slower count when they were folded).
   */
  countTimes(decision: Decision, times: number): void
  readonly size: number
  snapshot(): Record<string, FeatureDecisionCounts>
}

export function createDecisionStats(): DecisionStats {
  const decisions = new Map<string, FeatureDecisionCounts>()

  function countTimes(decision: Decision, times: number): void {
    let counts = decisions.get(decision.feature)
    if (counts === undefined) {
      const name = decisions.size < MAX_COUNTED_FEATURES ? decision.feature : '(other)'
      counts = decisions.get(name) ?? { allowed: 0, denied: 0, reasons: {} }
      decisions.set(name, counts)
    }
    if (decision.allowed) counts.allowed += times
    else counts.denied += times
    const reasons = counts.reasons as Record<string, number>
    reasons[decision.reason] = (reasons[decision.reason] ?? 0) + times
  }

  function count(decision: Decision): Decision {
    countTimes(decision, 1)
    return decision
  }

  function uncount(decision: Decision): void {
    const counts = decisions.get(decision.feature)
    if (counts === undefined) return
    if (decision.allowed) counts.allowed--
    else counts.denied--
    const reasons = counts.reasons as Record<string, number>
    reasons[decision.reason] = (reasons[decision.reason] ?? 1) - 1
  }

  const stats: Omit<DecisionStats, 'size'> = {
    count,
    uncount,
    recount(before, after) {
      uncount(before)
      return count(after)
    },
    countTimes,
    snapshot: () => Object.fromEntries(decisions),
  }
  return withGetters(stats, { size: () => decisions.size })
}

/**
 * Sends the aggregated counts every `intervalMs` (the `decision` event): one event a period, never one per check.
 * `fold` first adds the memoized answers' lazy counts. Returns a function that stops it.
 */
export function startDecisionSummary(
  platform: Platform,
  intervalMs: number,
  stats: DecisionStats,
  fold: () => void,
  send: (event: DecisionSummaryEvent) => void,
): () => void {
  // 0 turns the summary off: a timer of 0 ms re-armed at every fire would be a busy loop.
  if (intervalMs === 0) return () => {}
  let stopped = false
  let timer: unknown
  const summarize = () => {
    if (stopped) return
    fold()
    if (stats.size > 0) send({ at: platform.now(), features: stats.snapshot() })
    timer = platform.setTimeout(summarize, intervalMs)
  }
  timer = platform.setTimeout(summarize, intervalMs)
  return () => {
    stopped = true
    platform.clearTimeout(timer)
  }
}
