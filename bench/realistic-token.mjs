// The realistic entitlement of the benchmarks: about 2 KB signed, 15 features (flags, limits with upgrade hints,
// monthly caps with roles). Every customer is on the same plan; `used` says how much of its caps one has used.

export const FEATURE_NAMES = Array.from({ length: 15 }, (_, i) => `feature-${String(i).padStart(2, '0')}`)

/**
 * The `ent` claim, with caps resetting at `resetsAt` (epoch seconds) and `used` units used of each. `own` makes it
 * one customer's as a license server signs it: its term ends at `own.termEndsAt` (its order's second, a year on)
 * and its usage was counted at `own.asOf` (seconds, with a fraction).
 */
export function realisticEntitlement(resetsAt, used = 0, own = undefined) {
  const features = Object.fromEntries(
    FEATURE_NAMES.map((name, i) => [
      name,
      i % 3 === 0
        ? true
        : i % 3 === 1
          ? {
              limit: 10 * i,
              upgrade: { plan: 'business', url: 'https://vendor.example/pricing?plan=business' },
            }
          : {
              cap: { limit: 1e6, period: 'month', used: used + i, resetsAt, ...(own && { asOf: own.asOf }) },
              roles: ['admin', 'member'],
            },
    ]),
  )
  return {
    plan: { id: 'team', name: 'Team', tier: 2 },
    features,
    term: { expiresAt: own?.termEndsAt ?? resetsAt + 86_400 * 300 },
  }
}
