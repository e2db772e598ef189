import { usedInWindow } from './cap-usage.js'
import type { Decision, DecisionContext, DecisionReason, LevelNumbers, ResourceDecision } from './decision.js'
import { decision, denied, upgradeFor } from './decision-builders.js'
import type { CapUsage, Entitlements, Feature, FeatureCap, FeaturePer } from './entitlements.js'
import { currentWindowEnd } from './period.js'

const level = (limit: number, used: number, remaining: number): LevelNumbers => ({ limit, used, remaining })
const numbers = (limit: number, used: number): LevelNumbers => level(limit, used, Math.max(0, limit - used))

const resourceDecision = (
  id: string,
  deniedBy: ResourceDecision['deniedBy'],
  own: LevelNumbers | undefined,
  account: LevelNumbers | undefined,
): ResourceDecision => ({ id, deniedBy, own, account })

// The shapes of a level's numbers and of the resource's part, settled before any decision is made (as the decision's
// own, in decision-builders.ts): fields first left empty widen in place to hold any value after, so a limit of 10
// beside one of 1e12 never retires a shape that compiled code still builds. (Numbers first held as fractions would
// not retire it either, but would box every number in a heap object of its own: three more allocations a level.)
const empty = undefined as unknown as number
resourceDecision('', undefined, level(empty, empty, empty), undefined)
resourceDecision('', 'account', numbers(1, 0.5), numbers(2, 1))

/** `kind:id` of `kind`, with an id: a comparison, no string made (this is on the check's path). */
function isOfKind(resource: string, kind: string): boolean {
  return (
    resource.length > kind.length + 1 && resource.charCodeAt(kind.length) === 58 && resource.startsWith(kind)
  )
}

/** The account's window end for its cap as of `now`: the snapshot's, or the current one once that has closed. */
function windowEndOf(cap: FeatureCap, snapshot: CapUsage | undefined, now: number): number | undefined {
  const resetsAt = snapshot?.resetsAt
  return resetsAt !== undefined && now >= resetsAt ? currentWindowEnd(cap.period, resetsAt, now) : resetsAt
}

/**
 * A feature granted per resource, for the resource the context names (`kind:id`): the resource's own grant (on or
 * off), its numeric limit, its cap, then the feature's own cap, the account's over every resource. The resource's
 * own grant wins for what it alone bought (an add-on for one workspace); where both levels limit, the tighter
 * binds, and either denies the request whole. The context's `usage` is the resource's, and `accountUsage` (which
 * includes it) the account's; `resourceCounted` is what the client counted for the resource's cap that its token
 * does not hold yet. On the check's path: no closures, and no object made that the answer does not keep.
 */
export function decideForResource(
  entitlements: Entitlements,
  name: string,
  feature: Feature,
  per: FeaturePer,
  context: DecisionContext,
  amount: number,
  now: number,
  allowedAs: DecisionReason,
  expiresAt: number | undefined,
  accountUsage: number,
  resourceCounted: number,
): Decision {
  const id = context.resource
  if (id === undefined || !isOfKind(id, per.kind))
    return denied(name, 'resource_required', entitlements, expiresAt)
  const grant = per.resources.get(id)
  // The account's numbers, whichever level decides: a denial at the resource still shows what the account has left.
  const cap = feature.cap
  const snapshot = cap === undefined ? undefined : entitlements.usage.get(name)
  const account =
    cap === undefined ? undefined : numbers(cap.limit, usedInWindow(snapshot, now) + accountUsage)
  let own: LevelNumbers | undefined
  let denial: DecisionReason | undefined
  let deniedBy: ResourceDecision['deniedBy'] = 'resource'
  let overage: number | undefined
  let resetsAt: number | undefined
  if (!(grant?.enabled ?? per.enabled)) denial = 'not_in_plan'
  const usage = context.usage ?? 0
  const limit = grant?.limit ?? per.limit
  if (denial === undefined && limit !== undefined) {
    own = numbers(limit, usage)
    if (usage + amount > limit) denial = 'limit_exceeded'
  }
  if (denial === undefined && per.cap !== undefined) {
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
        denial = soft ? 'ceiling_reached' : 'usage_cap_reached'
      else overage = own.used + amount - capLimit
    }
  }
  // The account's cap, as a cap's decision reads it: past a hard limit, or a soft one's ceiling, denied whole.
  let shown = own
  if (denial === undefined && cap !== undefined && account !== undefined) {
    if (account.used + amount > cap.limit) {
      if (!cap.soft || (cap.ceiling !== undefined && account.used + amount > cap.ceiling)) {
        denial = cap.soft ? 'ceiling_reached' : 'usage_cap_reached'
        deniedBy = 'account'
      } else overage ??= account.used + amount - cap.limit
    }
    // The level with less left binds and shows its numbers (the account, when it denied).
    if (denial !== undefined || own === undefined || own.remaining >= account.remaining) {
      shown = account
      resetsAt = windowEndOf(cap, snapshot, now)
    }
  }
  const allowed = denial === undefined
  const why = resourceDecision(id, allowed ? undefined : deniedBy, own, account)
  const reason = denial ?? (overage === undefined ? allowedAs : 'overage')
  const hint = allowed ? undefined : upgradeFor(entitlements, name, feature)
  return decision(
    allowed,
    name,
    reason,
    entitlements,
    shown?.limit,
    shown?.used,
    resetsAt,
    expiresAt,
    hint,
    undefined,
    allowed ? overage : undefined,
    why,
  )
}
