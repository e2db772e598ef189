import type { Decision, DecisionContext, DecisionReason, LevelNumbers, ResourceDecision } from './decision.js'
import { decision, denied, upgradeFor } from './decision-builders.js'
import type { Entitlements, Feature, FeaturePer } from './entitlements.js'
import { currentWindowEnd } from './period.js'

const numbers = (limit: number, used: number): LevelNumbers => ({
  limit,
  used,
  remaining: Math.max(0, limit - used),
})

/** What the decision so far knows of the request: the context, the amount, the time, and how it would be allowed. */
export interface Asked {
  readonly context: DecisionContext
  readonly amount: number
  readonly now: number
  readonly allowedAs: DecisionReason
  readonly expiresAt: number | undefined
}

/**
 * A feature granted per resource, for the resource the context names (`kind:id`): the resource's own grant (on or
 * off), its numeric limit, its cap, then the account's cap over every resource (`decideAccount`, the ordinary
 * decision of the feature's own cap). The resource's own grant wins for what it alone bought (an add-on for one
 * workspace); where both levels limit, the tighter binds, and either denies the request whole. The context's
 * `usage` is the resource's, and `accountUsage` (which includes it) the account's; `resourceCounted` is what the
 * client counted for the resource's cap that its token does not hold yet.
 */
export function decideForResource(
  entitlements: Entitlements,
  name: string,
  feature: Feature,
  per: FeaturePer,
  asked: Asked,
  accountUsage: number,
  decideAccount: () => Decision,
  resourceCounted = 0,
): Decision {
  const { context, amount, now, expiresAt } = asked
  const id = context.resource
  const colon = id === undefined ? -1 : id.indexOf(':')
  if (id === undefined || colon <= 0 || colon === id.length - 1 || id.slice(0, colon) !== per.kind)
    return denied(name, 'resource_required', entitlements, expiresAt)
  const grant = per.resources.get(id.slice(colon + 1))
  // The account's numbers, whichever level decides: a denial at the resource still shows what the account has left.
  const cap = feature.cap
  const account =
    cap === undefined
      ? undefined
      : numbers(cap.limit, (cap.resetsAt !== undefined && now >= cap.resetsAt ? 0 : cap.used) + accountUsage)
  const levels = (deniedBy: ResourceDecision['deniedBy'], own?: LevelNumbers): ResourceDecision => ({
    id,
    deniedBy,
    own,
    account,
  })
  /** A decision at the resource's level, with its numbers shown. */
  const atResource = (
    allowed: boolean,
    reason: DecisionReason,
    own: LevelNumbers | undefined,
    resetsAt: number | undefined,
    overage?: number,
  ) => {
    const hint = allowed ? undefined : upgradeFor(entitlements, name, feature)
    const why = levels(allowed ? undefined : 'resource', own)
    return decision(
      allowed,
      name,
      reason,
      entitlements,
      own?.limit,
      own?.used,
      resetsAt,
      expiresAt,
      hint,
      undefined,
      overage,
      why,
    )
  }

  if (!(grant?.enabled ?? per.enabled)) return atResource(false, 'not_in_plan', undefined, undefined)
  const usage = context.usage ?? 0
  const limit = grant?.limit ?? per.limit
  if (limit !== undefined && usage + amount > limit)
    return atResource(false, 'limit_exceeded', numbers(limit, usage), undefined)
  let own = limit === undefined ? undefined : numbers(limit, usage)
  let ownOverage: number | undefined
  let resetsAt: number | undefined
  if (per.cap !== undefined) {
    const capLimit = grant?.capLimit ?? per.cap.limit
    resetsAt = per.cap.resetsAt
    let used = grant?.used ?? 0
    // The snapshot belongs to a window that has closed: the current window starts from zero.
    if (resetsAt !== undefined && now >= resetsAt) {
      used = 0
      resetsAt = currentWindowEnd(per.cap.period, resetsAt, now)
    }
    // What this process counted for the resource beyond the token's snapshot, on top of what the app says.
    own = numbers(capLimit, used + usage + resourceCounted)
    if (own.used + amount > capLimit) {
      const { soft, ceiling } = per.cap
      if (!soft || (ceiling !== undefined && own.used + amount > ceiling))
        return atResource(false, soft ? 'ceiling_reached' : 'usage_cap_reached', own, resetsAt)
      ownOverage = own.used + amount - capLimit
    }
  }
  if (account === undefined)
    return atResource(true, ownOverage === undefined ? asked.allowedAs : 'overage', own, resetsAt, ownOverage)
  const accountDecision = decideAccount()
  if (!accountDecision.allowed) return { ...accountDecision, resource: levels('account', own) }
  // Both allow: the level with less left binds and shows its numbers; overage at either level is overage.
  const overage = ownOverage ?? accountDecision.overage
  const reason = overage === undefined ? asked.allowedAs : 'overage'
  if (own !== undefined && own.remaining < account.remaining)
    return atResource(true, reason, own, resetsAt, overage)
  return { ...accountDecision, reason, overage, resource: levels(undefined, own) }
}
