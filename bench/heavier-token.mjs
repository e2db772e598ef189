// The heavier entitlement a real plan carries (issue 31's second token shape): 22 features, 15 flags, 5 numeric
// limits with upgrade hints, a monthly cap, an add-on feature; a term with a grace period; a default upgrade hint
// and hints for features not in the plan. Heavier in what the claims check and the read model build (more features,
// more kinds of claim), not in bytes: its flags are `true`, so it signs to fewer bytes than realistic-token.mjs.
// Every customer is on the same plan; `used` is how much of the cap is used.

const FLAG_NAMES = Array.from({ length: 15 }, (_, i) => `flag-${String(i).padStart(2, '0')}`)
const LIMIT_NAMES = Array.from({ length: 5 }, (_, i) => `limit-${i}`)

/** Every feature's name, in the token's order. */
export const HEAVIER_FEATURE_NAMES = [...FLAG_NAMES, ...LIMIT_NAMES, 'api-calls', 'sso']

/**
 * The `ent` claim, the cap resetting at `resetsAt` (epoch seconds) with `used` units used. `own` makes it one
 * customer's, as in realistic-token.mjs: its term ends at `own.termEndsAt` (grace two weeks on), its usage counted at
 * `own.asOf`.
 */
export function heavierEntitlement(resetsAt, used = 0, own = undefined) {
  const termEndsAt = own?.termEndsAt ?? resetsAt + 86_400 * 300
  const upgrade = { plan: 'business', url: 'https://vendor.example/pricing?plan=business' }
  return {
    plan: { id: 'growth', name: 'Growth', tier: 3 },
    addons: ['sso'],
    features: {
      ...Object.fromEntries(FLAG_NAMES.map((name) => [name, true])),
      ...Object.fromEntries(LIMIT_NAMES.map((name, i) => [name, { limit: 10 * (i + 1), upgrade }])),
      'api-calls': {
        cap: { limit: 1_000_000, period: 'month', used, resetsAt, ...(own && { asOf: own.asOf }) },
      },
      sso: { addon: 'sso' },
    },
    term: { expiresAt: termEndsAt, graceEndsAt: termEndsAt + 86_400 * 14 },
    upgrade: { plan: 'enterprise', url: 'https://vendor.example/pricing' },
    upgrades: { audit: { plan: 'enterprise' }, scim: { addon: 'identity' } },
  }
}
