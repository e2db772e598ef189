import type { CreditBalanceModel, Entitlements, Feature, TermModel } from './entitlements.js'
import { featureTerm } from './feature-term.js'

/** The last moment a term grants anything: its grace's end, else its end, else its trial's. */
const lastEnd = (term: TermModel) => term.graceEndsAt ?? term.expiresAt ?? term.trialEndsAt

/** One difference between two versions of a customer's entitlements, for UIs that react to upgrades. */
export type EntitlementChange =
  | { readonly type: 'plan_changed'; readonly from: string | undefined; readonly to: string }
  | { readonly type: 'feature_added'; readonly feature: string }
  | { readonly type: 'feature_removed'; readonly feature: string }
  | {
      readonly type: 'limit_changed'
      readonly feature: string
      readonly from: number | undefined
      readonly to: number | undefined
    }
  | {
      readonly type: 'cap_changed'
      readonly feature: string
      readonly from: number | undefined
      readonly to: number | undefined
    }
  | {
      readonly type: 'term_changed'
      readonly feature: string
      readonly from: number | undefined
      readonly to: number | undefined
    }
  /** Who may use the feature, or where, changed (roles or regions). */
  | { readonly type: 'access_changed'; readonly feature: string }
  /**
   * A credit balance changed other than by spending: a top-up, a grant, a void, an expiry. `from` and `to` are the
   * snapshots' balances (`undefined`: no such credits).
   */
  | {
      readonly type: 'credits_changed'
      readonly credits: string
      readonly from: number | undefined
      readonly to: number | undefined
    }

const sameList = (a: readonly string[] | undefined, b: readonly string[] | undefined) =>
  a === b ||
  (a !== undefined && b !== undefined && a.length === b.length && a.every((item, i) => item === b[i]))

/** What a snapshot's grants hold, and what was spent in all: spending moves one into the other, nothing else does. */
const balanceOf = (credits: CreditBalanceModel) =>
  credits.grants.reduce((sum, grant) => sum + grant.remaining, 0)
const grantedOf = (credits: CreditBalanceModel) => balanceOf(credits) + credits.spent

/** The credit types whose balance changed by more than spending (usage snapshots are not changes). */
function creditChanges(
  previous: Entitlements | undefined,
  next: Entitlements,
  changes: EntitlementChange[],
): void {
  const before = previous?.credits
  for (const [type, credits] of next.credits) {
    const old = before?.get(type)
    if (old === undefined || Math.abs(grantedOf(old) - grantedOf(credits)) > 1e-9)
      changes.push({
        type: 'credits_changed',
        credits: type,
        from: old && balanceOf(old),
        to: balanceOf(credits),
      })
  }
  if (before !== undefined)
    for (const [type, old] of before)
      if (!next.credits.has(type))
        changes.push({ type: 'credits_changed', credits: type, from: balanceOf(old), to: undefined })
}

/** What changed between `previous` and `next` that a product would show. Usage snapshots are not changes. */
export function diffEntitlements(
  previous: Entitlements | undefined,
  next: Entitlements,
): EntitlementChange[] {
  const changes: EntitlementChange[] = []
  if (previous?.plan.id !== next.plan.id)
    changes.push({ type: 'plan_changed', from: previous?.plan.id, to: next.plan.id })
  const before = previous?.features ?? new Map<string, Feature>()
  for (const [name, feature] of next.features) {
    const old = before.get(name)
    if (old === undefined) {
      changes.push({ type: 'feature_added', feature: name })
      continue
    }
    if (old.limit !== feature.limit)
      changes.push({ type: 'limit_changed', feature: name, from: old.limit, to: feature.limit })
    if (old.cap?.limit !== feature.cap?.limit) {
      changes.push({ type: 'cap_changed', feature: name, from: old.cap?.limit, to: feature.cap?.limit })
    }
    const oldEnd = lastEnd(featureTerm(previous!, old))
    const newEnd = lastEnd(featureTerm(next, feature))
    if (oldEnd !== newEnd) changes.push({ type: 'term_changed', feature: name, from: oldEnd, to: newEnd })
    const sameRegions =
      sameList(old.regions?.allow, feature.regions?.allow) &&
      sameList(old.regions?.deny, feature.regions?.deny)
    if (!sameList(old.roles, feature.roles) || !sameRegions)
      changes.push({ type: 'access_changed', feature: name })
  }
  for (const name of before.keys()) {
    if (!next.features.has(name)) changes.push({ type: 'feature_removed', feature: name })
  }
  if (next.credits.size > 0 || (previous !== undefined && previous.credits.size > 0))
    creditChanges(previous, next, changes)
  return changes
}
