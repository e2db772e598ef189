import type { Decision } from '../decision.js'
import { EntitlementError } from '../errors.js'
import { NEVER } from '../protocol/usage-rules.js'
import type { UsageMeter } from '../usage/meter.js'
import type { MemoryUsageStore, UsageCounterStore } from '../usage-store.js'
import { type Answerer, fallbackDecision } from './answer.js'
import { createBoundedCache } from './bounded-cache.js'
import type { DecisionStats } from './decision-stats.js'
import type { CheckContext, ClientConfig, ErrorEvent } from './options.js'
import type { Entry, TokenCache } from './token-cache.js'
import { counterKeyOf, snapshotBaseline, windowFor } from './usage-window.js'

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/**
 * `consume()` and `consumeSync()`: a check and a use in one step. Without a fleet the cap is counted in this
 * process, synchronously (one thread: nothing can come between the check and the add); with one, in the shared
 * store, atomically, and with `onStoreError: 'local'` from the last fleet count seen while the store is out of
 * reach.
 */
export function createConsume(host: {
  config: ClientConfig
  tokens: TokenCache
  answerer: Answerer
  stats: DecisionStats
  meter: UsageMeter | undefined
  /** The fleet's shared store, if any. */
  fleet: UsageCounterStore | undefined
  /** Without a fleet and without a meter: where this process counts what it consumed. */
  localStore: MemoryUsageStore | undefined
  keyOf: (context: CheckContext) => string
  isClosed: () => boolean
  report: (during: ErrorEvent['during'], subject: string | undefined, error: unknown) => void
}) {
  const { config, tokens, answerer, stats, meter } = host
  const store = host.fleet
  const { platform } = config
  /** What this instance last saw of each fleet counter, and what it used while the store was out of reach. */
  const fleetSeen = createBoundedCache<{ used: number; owed: number }>({ max: config.maxSubjects })

  /** Records the use for the license server; a memoized answer for the feature no longer counts everything. */
  function use(key: string, entry: Entry | undefined, feature: string, amount: number): void {
    if (meter !== undefined && amount > 0)
      meter.record(key, feature, amount, platform.now(), entry, undefined, undefined)
    answerer.invalidate(entry, feature)
  }

  /** Counts one unit of work against the store; after an outage, first what this instance used meanwhile. */
  async function count(
    fleet: UsageCounterStore,
    seen: { used: number; owed: number },
    request: { key: string; amount: number; limit: number; baseline: number; expiresAt: number | undefined },
  ) {
    const owed = seen.owed
    if (owed > 0) {
      // Back from an outage: the fleet learns what this instance used meanwhile, before anything else.
      seen.owed -= owed
      try {
        await fleet.consume({ ...request, amount: owed, force: true })
      } catch (error) {
        seen.owed += owed
        throw error
      }
    }
    return fleet.consume(request)
  }

  /**
   * In this process: the check counts what this process used (the meter's unreported units, or the local
   * counter), so when it allows `amount`, the add fits under the cap; the add is then made at once.
   */
  function consumeHere(
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
      if (meter === undefined) {
        const now = platform.now()
        const windowEnd = windowFor(entry.entitlements, feature, now)
        host.localStore!.consumeNow({
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

  /** Over the fleet's shared store: the decision, then one atomic step of the store. */
  async function consumeInFleet(
    entry: Entry | undefined,
    key: string,
    feature: string,
    context: CheckContext,
    fleet: UsageCounterStore,
  ): Promise<Decision> {
    const checked = answerer.answer(entry, key, feature, context, true)
    const amount = context.amount ?? 1
    if (!checked.allowed) return checked
    const cap = entry?.entitlements.features.get(feature)?.cap
    if (cap === undefined || entry === undefined) {
      use(key, entry, feature, amount)
      return checked
    }
    const entitlements = entry.entitlements
    const now = platform.now()
    const windowEnd = windowFor(entitlements, feature, now)
    const baseline = snapshotBaseline(cap, now)
    const counterKey = counterKeyOf(entitlements.subject, feature, windowEnd)
    const hint = entitlements.features.get(feature)?.upgrade ?? entitlements.upgrade
    const decided = (used: number, allowed: boolean): Decision =>
      stats.recount(checked, {
        ...checked,
        allowed,
        reason: allowed ? checked.reason : 'usage_cap_reached',
        used: allowed ? used - amount : used,
        remaining: Math.max(0, cap.limit - used),
        upgrade: allowed ? checked.upgrade : hint,
      })
    // One object per counter, changed in place: concurrent consumes see each other's outage counts.
    let seen = fleetSeen.get(counterKey)
    if (seen === undefined) {
      seen = { used: baseline, owed: 0 }
      fleetSeen.set(counterKey, seen)
    }
    const request = {
      key: counterKey,
      amount,
      limit: cap.limit,
      baseline,
      expiresAt: windowEnd === NEVER ? undefined : windowEnd,
    }
    try {
      const result = await count(fleet, seen, request)
      seen.used = result.used
      if (result.allowed) use(key, entry, feature, amount)
      return decided(result.used, result.allowed)
    } catch (error) {
      host.report(
        'fleet',
        context.subject,
        new EntitlementError('store_unavailable', 'the shared usage store failed', { cause: error }),
      )
      if (config.fleetPolicy === 'closed') {
        return stats.recount(checked, {
          ...fallbackDecision(feature, 'closed', entitlements.subject),
          plan: entitlements.plan.id,
          source: checked.source,
          age: checked.age,
        })
      }
      // Local: from the last fleet count this instance saw, plus what it used since.
      const used = Math.max(seen.used, baseline) + seen.owed
      if (used + amount > cap.limit) return decided(used, false)
      seen.owed += amount
      use(key, entry, feature, amount)
      return decided(used + amount, true)
    }
  }

  async function consume(feature: string, context: CheckContext): Promise<Decision> {
    const key = host.keyOf(context)
    let entry = tokens.get(key)
    if (entry === undefined && !host.isClosed() && !tokens.hasVerdict(key)) entry = await tokens.load(key)
    return store === undefined
      ? consumeHere(entry, key, feature, context)
      : consumeInFleet(entry, key, feature, context, store)
  }

  return { consume, consumeHere }
}
