import { usedInWindow } from '../../core/cap-usage.js'
import type { Decision } from '../../core/decision.js'
import { EntitlementError } from '../../core/errors.js'
import { NEVER } from '../../protocol/usage-rules.js'
import { type Answerer, fallbackDecision } from '../answers/answer.js'
import type { DecisionStats } from '../answers/decision-stats.js'
import type { CheckContext, ErrorEvent } from '../options.js'
import type { Entry } from '../tokens/cache-entry.js'
import { counterKeyOf, windowFor } from '../usage-window.js'
import type { Use } from './consume-here.js'
import type { createConsumeResourceInFleet } from './consume-resource-in-fleet.js'

type ConsumeResourceInFleet = ReturnType<typeof createConsumeResourceInFleet>

import type { FleetLedger } from './fleet-ledger.js'

/**
 * A decision made again at the store's count, as the store counted: what remains once this request's amount is
 * used (as consume() in one process answers); and if the answer moved while the store counted (a revocation heard
 * meanwhile), what the store did stands, since it counted or did not, with what was checked before it counted as why.
 */
export function asTheStoreCounted(
  stats: DecisionStats,
  checked: Decision,
  decision: Decision,
  allowed: boolean,
  amount: number,
  soft: boolean,
): Decision {
  if (decision.allowed && decision.remaining !== undefined)
    (decision as { remaining: number }).remaining = Math.max(0, decision.remaining - amount)
  if (decision.allowed === allowed) return decision
  const capReason = soft ? 'ceiling_reached' : 'usage_cap_reached'
  return stats.recount(decision, { ...decision, allowed, reason: allowed ? checked.reason : capReason })
}

/**
 * `consume()` over the fleet's shared store: the decision, then one atomic step of the store. When the store
 * fails, `onStoreError` says what happens: deny (`closed`), or count in this instance from the last fleet count
 * it saw (`local`, through the outage ledger).
 */
export function createConsumeInFleet(parts: {
  readonly answerer: Answerer
  readonly stats: DecisionStats
  readonly ledger: FleetLedger
  readonly onStoreError: 'closed' | 'local'
  readonly now: () => number
  readonly use: Use
  readonly report: (during: ErrorEvent['during'], subject: string | undefined, error: unknown) => void
  /** A per-resource cap's consume, where the store counts several counters in one step. */
  readonly consumeResource: ConsumeResourceInFleet | undefined
}) {
  const { answerer, stats, ledger, use } = parts

  return async function consumeInFleet(
    entry: Entry | undefined,
    key: string,
    feature: string,
    context: CheckContext,
  ): Promise<Decision> {
    const checked = answerer.answer(entry, key, feature, context, true)
    const amount = context.amount ?? 1
    if (!checked.allowed) return checked
    const granted = entry?.entitlements.features.get(feature)
    const cap = granted?.cap
    // A per-resource feature's resource is counted in this instance, not yet across the fleet (docs/fleets.md).
    const resource = granted?.per !== undefined ? context.resource : undefined
    if (resource !== undefined && granted?.per?.cap !== undefined && parts.consumeResource !== undefined)
      return parts.consumeResource(entry!, key, feature, { ...context, resource }, checked)
    if (cap === undefined || entry === undefined) {
      use(key, entry, feature, amount, undefined, resource)
      return checked
    }
    const entitlements = entry.entitlements
    const now = parts.now()
    const windowEnd = windowFor(entitlements, feature, now)
    const baseline = usedInWindow(entitlements.usage.get(feature), now)
    const counterKey = counterKeyOf(entitlements.subject, feature, windowEnd)
    // A soft cap is counted up to its ceiling (or without bound): what the fleet counts past the limit is overage.
    const bound = cap.soft ? (cap.ceiling ?? Number.MAX_SAFE_INTEGER) : cap.limit
    /**
     * The decision as the fleet's count makes it: decided again from the fleet's usage before this request, so the
     * reason (trial, grace, overage, the cap), the overage and the upgrade hint come from one place.
     */
    const decided = (used: number, allowed: boolean): Decision => {
      stats.uncount(checked)
      const before = allowed ? used - amount : used
      const decision = answerer.answer(entry, key, feature, context, true, before - baseline)
      return asTheStoreCounted(stats, checked, decision, allowed, amount, cap.soft)
    }
    const view = ledger.view(counterKey, baseline)
    const request = {
      key: counterKey,
      amount,
      limit: bound,
      baseline,
      expiresAt: windowEnd === NEVER ? undefined : windowEnd,
    }
    try {
      const result = await ledger.count(view, request)
      if (result.allowed) use(key, entry, feature, amount, result.used, resource)
      return decided(result.used, result.allowed)
    } catch (error) {
      parts.report(
        'fleet',
        context.subject,
        new EntitlementError('store_unavailable', 'the shared usage store failed', { cause: error }),
      )
      if (parts.onStoreError === 'closed') {
        return stats.recount(checked, {
          ...fallbackDecision(feature, 'closed', entitlements.subject),
          plan: entitlements.plan.id,
          source: checked.source,
          age: checked.age,
        })
      }
      const local = ledger.countLocally(view, baseline, amount, bound)
      if (local.allowed) use(key, entry, feature, amount, local.used, resource)
      return decided(local.used, local.allowed)
    }
  }
}
