import type { Entitlements, Feature, TermModel } from './entitlements.js'

/** When a feature stops being granted, trial, term and grace: its own term's ends, else the token's. */
export function featureTerm(entitlements: Entitlements, feature: Feature): TermModel {
  const own = feature.term
  if (own === undefined) return entitlements.term
  const token = entitlements.term
  return {
    expiresAt: own.expiresAt ?? token.expiresAt,
    graceEndsAt: own.graceEndsAt ?? token.graceEndsAt,
    trialEndsAt: own.trialEndsAt ?? token.trialEndsAt,
  }
}
