import { usedInWindow } from '../../core/cap-usage.js'
import type { Decision } from '../../core/decision.js'
import { EntitlementError } from '../../core/errors.js'
import { NEVER } from '../../protocol/usage-rules.js'
import type { UsageCounterRequest, UsageCounterStore } from '../../usage/counter-store.js'
import { resourceMetric } from '../../usage/local-usage.js'
import { type Answerer, fallbackDecision } from '../answers/answer.js'
import type { DecisionStats } from '../answers/decision-stats.js'
import type { CheckContext, ErrorEvent } from '../options.js'
import type { Entry } from '../tokens/cache-entry.js'
import { windowFor } from '../usage-window.js'
import type { Use } from './consume-here.js'
import { asTheStoreCounted } from './consume-in-fleet.js'

type ConsumeAll = NonNullable<UsageCounterStore['consumeAll']>

/** The most a soft cap with no ceiling counts to: without bound. */
const UNBOUNDED = Number.MAX_SAFE_INTEGER

/**
 * `consume()` of a per-resource cap over the fleet's store: the resource's counter and the account's in one atomic
 * step (`consumeAll`: one Redis script over both keys), so two instances cannot both take the last unit of a
 * resource, or of its account, and a denial counts nothing at either level. Both keys carry the customer as a Redis
 * Cluster hash tag (`{customer}`), so they live in one slot. While the store cannot be reached, such a consume is
 * denied `unavailable` whatever `onStoreError` says: no count of the resource is shared to fall back on.
 */
export function createConsumeResourceInFleet(parts: {
  readonly answerer: Answerer
  readonly stats: DecisionStats
  readonly consumeAll: ConsumeAll
  readonly now: () => number
  readonly use: Use
  readonly report: (during: ErrorEvent['during'], subject: string | undefined, error: unknown) => void
}) {
  const { answerer, stats } = parts

  return async function consumeResourceInFleet(
    entry: Entry,
    key: string,
    feature: string,
    context: CheckContext & { resource: string },
    checked: Decision,
  ): Promise<Decision> {
    const { entitlements } = entry
    const granted = entitlements.features.get(feature)!
    const perCap = granted.per!.cap!
    const { resource } = context
    const amount = context.amount ?? 1
    const now = parts.now()
    const window = windowFor(entitlements, feature, now)
    const expiresAt = window === NEVER ? undefined : window
    const keyOf = (metric: string) =>
      `{${encodeURIComponent(entitlements.subject)}}:${encodeURIComponent(metric)}:${window}`
    const grant = granted.per!.resources.get(resource)
    const own: UsageCounterRequest = {
      key: keyOf(resourceMetric(feature, resource)),
      amount,
      limit: perCap.soft ? (perCap.ceiling ?? UNBOUNDED) : (grant?.capLimit ?? perCap.limit),
      baseline: perCap.resetsAt !== undefined && now >= perCap.resetsAt ? 0 : (grant?.used ?? 0),
      expiresAt,
    }
    const cap = granted.cap
    const account: UsageCounterRequest | undefined =
      cap === undefined
        ? undefined
        : {
            key: keyOf(feature),
            amount,
            limit: cap.soft ? (cap.ceiling ?? UNBOUNDED) : cap.limit,
            baseline: usedInWindow(entitlements.usage.get(feature), now),
            expiresAt,
          }
    let result: Awaited<ReturnType<ConsumeAll>>
    try {
      result = await parts.consumeAll(account === undefined ? [own] : [own, account])
    } catch (error) {
      const cause = new EntitlementError('store_unavailable', 'the shared usage store failed', {
        cause: error,
      })
      parts.report('fleet', context.subject, cause)
      return stats.recount(checked, {
        ...fallbackDecision(feature, 'closed', entitlements.subject),
        plan: entitlements.plan.id,
        source: checked.source,
        age: checked.age,
      })
    }
    const { allowed, used } = result
    if (allowed) parts.use(key, entry, feature, amount, used[1], resource)
    // Decided again at the fleet's counts before this request: reason, numbers and hints from one place.
    stats.uncount(checked)
    const before = (i: number) => used[i]! - (allowed ? amount : 0)
    const accountCounted = account === undefined ? undefined : before(1) - account.baseline
    const decision = answerer.answer(
      entry,
      key,
      feature,
      context,
      true,
      accountCounted,
      before(0) - own.baseline,
    )
    return asTheStoreCounted(stats, checked, decision, allowed, amount, false)
  }
}
