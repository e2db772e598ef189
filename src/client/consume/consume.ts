import type { Decision } from '../../core/decision.js'
import type { MemoryUsageStore } from '../../usage/counter-store.js'
import type { UsageMeter } from '../../usage/meter.js'
import { type Answerer, fallbackDecision } from '../answers/answer.js'
import type { DecisionStats } from '../answers/decision-stats.js'
import type { ClientConfig } from '../config.js'
import type { CreditSpending } from '../credits/reserve.js'
import type { CheckContext, ErrorEvent } from '../options.js'
import { alertsOn, type Thresholds } from '../thresholds.js'
import type { Entry } from '../tokens/cache-entry.js'
import type { TokenCache } from '../tokens/token-cache.js'
import { createConsumeHere, type Use } from './consume-here.js'
import { createConsumeInFleet } from './consume-in-fleet.js'
import { createConsumeResourceInFleet } from './consume-resource-in-fleet.js'
import { createFleetLedger } from './fleet-ledger.js'
import type { Reservations } from './reservations.js'

/**
 * `consume()` and `consumeSync()`: a check and a use in one step. Without a fleet the cap is counted in this
 * process (`consume-here.ts`); with one, in the shared store, atomically (`consume-in-fleet.ts`).
 */
export function createConsume(parts: {
  /** Credits spent in a fleet's store, for a costed feature. */
  readonly creditSpending: CreditSpending
  readonly config: ClientConfig
  readonly tokens: TokenCache
  readonly answerer: Answerer
  readonly stats: DecisionStats
  readonly meter: UsageMeter | undefined
  /** Without a fleet and without a meter: where this process counts what it consumed. */
  readonly localCounters: MemoryUsageStore | undefined
  /** With a storage that outlives the process: what makes a grant safe across a crash. */
  readonly reservations: Reservations | undefined
  readonly keyOf: (context: CheckContext) => string
  readonly isClosed: () => boolean
  /** Usage alerts, where a cap has thresholds. */
  readonly thresholds: Thresholds | undefined
  readonly report: (during: ErrorEvent['during'], subject: string | undefined, error: unknown) => void
}) {
  const { config, tokens, answerer, meter } = parts
  const { platform, fleet } = config
  const now = () => platform.now()

  const use: Use = (key, entry, feature, amount, used, resource) => {
    if (meter !== undefined && amount > 0)
      meter.record(key, feature, amount, platform.now(), entry, undefined, undefined, resource)
    answerer.invalidate(entry, feature)
    // A usage alert this use crossed: the usage is worked out (a clock read, lookups) only where one could be.
    if (parts.thresholds !== undefined && amount > 0 && alertsOn(entry, feature))
      parts.thresholds.observe(entry.entitlements, feature, used ?? answerer.usedNow(entry, key, feature))
  }

  const here = createConsumeHere({
    answerer,
    localCounters: meter === undefined ? parts.localCounters : undefined,
    reservations: parts.reservations,
    now,
    use,
  })

  /**
   * `consumeSync()`: a grant whose reservation a storage that writes only asynchronously has not written yet is
   * denied `unavailable` (the write has started; a later call finds it done). The built-in storages write at once.
   */
  function consumeHere(
    entry: Entry | undefined,
    key: string,
    feature: string,
    context: CheckContext,
  ): Decision {
    const answer = here(entry, key, feature, context)
    if (!('uncovered' in answer)) return answer
    const { checked } = answer
    return parts.stats.recount(checked, {
      ...fallbackDecision(feature, 'closed', checked.subject),
      plan: checked.plan,
      source: checked.source,
      age: checked.age,
    })
  }

  /**
   * `consume()` in process: a grant its reservation covers is answered at once (no promise of its own: `consume()`
   * is on the hot path); else it waits for the reservation to be written, then decides again.
   */
  function consumeHereAsync(
    entry: Entry | undefined,
    key: string,
    feature: string,
    context: CheckContext,
  ): Decision | Promise<Decision> {
    const answer = here(entry, key, feature, context)
    if (!('uncovered' in answer)) return answer
    const { uncovered, checked } = answer
    // The check was counted; deciding again counts it once more: take the first back.
    parts.stats.uncount(checked)
    return parts
      .reservations!.cover(uncovered.counter, uncovered.amount, uncovered.left)
      .then(() => consumeHereAsync(entry, key, feature, context))
  }
  const consumeInFleet =
    fleet === undefined
      ? undefined
      : createConsumeInFleet({
          answerer,
          stats: parts.stats,
          ledger: createFleetLedger(fleet.store, {
            maxCounters: config.maxSubjects,
            instances: fleet.instances,
            viewMaxAgeMs: fleet.viewMaxAgeMs,
            now,
          }),
          onStoreError: fleet.onStoreError,
          now,
          use,
          report: parts.report,
          consumeResource:
            fleet.store.consumeAll === undefined
              ? undefined
              : createConsumeResourceInFleet({
                  answerer,
                  stats: parts.stats,
                  consumeAll: fleet.store.consumeAll.bind(fleet.store),
                  now,
                  use,
                  report: parts.report,
                }),
        })

  async function consume(feature: string, context: CheckContext): Promise<Decision> {
    const key = parts.keyOf(context)
    let entry = tokens.get(key)
    if (entry === undefined && !parts.isClosed() && !tokens.hasVerdict(key)) entry = await tokens.load(key)
    if (consumeInFleet === undefined) return consumeHereAsync(entry, key, feature, context)
    if (entry === undefined || entry.entitlements.costs.size === 0 || !entry.entitlements.costs.has(feature))
      return consumeInFleet(entry, key, feature, context)
    return parts.creditSpending.consumeInFleet(entry, key, feature, context, () =>
      consumeInFleet(entry, key, feature, context),
    )
  }

  return { consume, consumeHere }
}
