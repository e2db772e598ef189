import { creditCost, nextExpiry, roundCredits, spendableAt } from './credits.js'
import type { Decision } from './decision.js'
import { decision, upgradeFor } from './decision-builders.js'
import type { CreditCostModel, Entitlements, Feature } from './entitlements.js'

/**
 * The last step of a decision for a feature or metric that costs credits: whatever else allowed it, the balance
 * must pay for it. The balance is the snapshot's grants live at `now` (an expired grant is worth nothing, with no
 * sweep to wait for), less `counted`: what this client spent since the snapshot and what it holds. That counts
 * every local burn against the grants live now, even one a grant that has since expired paid for: a balance that
 * can only err low, until the next snapshot settles it exactly.
 *
 * Denied `credits_offline` once the snapshot is older than the plan's offline bound and this request would take
 * spending since the snapshot past it; `credits_exhausted` when the balance and the overdraft do not cover it.
 */
export function decideCredits(
  entitlements: Entitlements,
  name: string,
  feature: Feature | undefined,
  allowed: Decision,
  cost: CreditCostModel,
  amount: number,
  now: number,
  counted: number,
): Decision {
  const balance = entitlements.credits.get(cost.type)!
  const price = creditCost(cost, amount)
  const available = roundCredits(spendableAt(balance.grants, now) - counted)
  const credits = {
    type: cost.type,
    cost: price,
    available,
    overdraft: undefined as number | undefined,
    nextExpiry: nextExpiry(balance.grants, now),
    asOf: balance.asOf,
  }
  const offline = balance.offline
  if (offline !== undefined && now - balance.asOf > offline.afterMs && counted + price > offline.spend) {
    const denial = decision(
      false,
      name,
      'credits_offline',
      entitlements,
      undefined,
      undefined,
      undefined,
      allowed.expiresAt,
    )
    return { ...denial, credits }
  }
  if (price > available + balance.overdraft) {
    const hint = upgradeFor(entitlements, cost.type, feature)
    const denial = decision(
      false,
      name,
      'credits_exhausted',
      entitlements,
      undefined,
      undefined,
      undefined,
      allowed.expiresAt,
      hint,
    )
    return { ...denial, credits }
  }
  if (price > available && price > 0) {
    credits.overdraft = roundCredits(price - available)
    return { ...allowed, reason: 'overdraft', credits }
  }
  return { ...allowed, credits }
}
