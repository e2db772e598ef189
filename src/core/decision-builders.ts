import type { UpgradeHint } from './claims.js'
import type { Decision, DecisionReason, ResourceDecision } from './decision.js'
import type { Entitlements, Feature } from './entitlements.js'
import type { EntitlementErrorCode } from './errors.js'

/** Builds every decision with the same property order, so all decisions share one shape. */
export function decision(
  allowed: boolean,
  feature: string,
  reason: DecisionReason,
  entitlements: Entitlements | undefined,
  limit?: number,
  used?: number,
  resetsAt?: number,
  expiresAt?: number,
  upgrade?: UpgradeHint,
  error?: EntitlementErrorCode,
  overage?: number,
  resource?: ResourceDecision,
): Decision {
  return {
    allowed,
    feature,
    reason,
    subject: entitlements?.subject,
    plan: entitlements?.plan.id,
    limit,
    used,
    remaining: limit === undefined || used === undefined ? undefined : Math.max(0, limit - used),
    overage,
    resetsAt,
    expiresAt,
    upgrade,
    error,
    source: undefined,
    age: undefined,
    resource,
    credits: undefined,
  }
}

// Gives the decision's shape fields that hold any value before any real decision is made. V8 gives a field the
// representation of the first value it holds: a first limit of 10 makes `limit` a small-integer field, and a later
// limit of 1e12 (bytes, tokens) then retires that shape. Code compiled before keeps building objects of the retired
// shape, and `answer()` migrates every one of them when it writes `source`: measured at 3.5x a check's cost once a
// process has checked both kinds of limit. A field that first holds undefined widens in place, retiring nothing.
decision(false, '', 'not_in_plan', undefined)
decision(true, '', 'granted', undefined, 1, 0.5, 1, 1, undefined, undefined, 0.5)

/** A denial that carries no numbers: most of them. */
export function denied(
  feature: string,
  reason: DecisionReason,
  entitlements: Entitlements | undefined,
  expiresAt?: number,
  upgrade?: UpgradeHint,
  error?: EntitlementErrorCode,
): Decision {
  return decision(
    false,
    feature,
    reason,
    entitlements,
    undefined,
    undefined,
    undefined,
    expiresAt,
    upgrade,
    error,
  )
}

/** Where to send a customer this feature is closed to: its own hint, the token's hint for it, or the default. */
export function upgradeFor(
  entitlements: Entitlements,
  name: string,
  feature: Feature | undefined,
): UpgradeHint | undefined {
  return feature?.upgrade ?? entitlements.upgrades.get(name) ?? entitlements.upgrade
}
