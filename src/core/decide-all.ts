import { decide } from './decide.js'
import type { Decision, DecisionContext } from './decision.js'
import type { Entitlements } from './entitlements.js'

/** Every feature's decision, by name. No prototype: a name such as `constructor` is only a name. */
export type DecisionsByFeature = Readonly<Record<string, Decision>>

/** The feature names a token speaks of: every granted feature, then those it names an upgrade hint for. */
export function featureNames(entitlements: Entitlements): string[] {
  return [...new Set([...entitlements.features.keys(), ...entitlements.upgrades.keys()])]
}

/**
 * Every feature's decision at once, for a pricing page, a settings screen or a report: each granted feature, and
 * each feature the token names an upgrade hint for (denied `not_in_plan`, with the hint). A pure function of
 * what was bought, what is asked and the time, as {@link decide} is, whose answer each entry is.
 *
 * @param now epoch milliseconds.
 * @example
 * ```ts
 * const decisions = decideAll(entitlements, { roles: user.roles }, Date.now())
 * for (const [feature, decision] of Object.entries(decisions)) render(feature, decision)
 * ```
 */
export function decideAll(
  entitlements: Entitlements,
  context: DecisionContext | undefined,
  now: number,
): DecisionsByFeature {
  const decisions = Object.create(null) as Record<string, Decision>
  for (const name of featureNames(entitlements)) decisions[name] = decide(entitlements, name, context, now)
  return Object.freeze(decisions)
}
