import { readFileSync } from 'node:fs'
import type { EntitlementClaim, FeatureClaim, UpgradeHint } from 'entitle'
import * as z from 'zod'

const featureName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a feature name: lowercase, digits, . _ -')
const period = z.enum(['hour', 'day', 'week', 'month', 'year', 'total'])

/** One feature as the catalog sells it. `limit: "seats"` takes the number of seats of the order. */
const catalogFeature = z.union([
  z.literal(true),
  z.strictObject({
    limit: z.union([z.int().nonnegative(), z.literal('seats')]).optional(),
    cap: z.strictObject({ limit: z.int().nonnegative(), period }).optional(),
    roles: z.array(z.string().min(1)).max(32).optional(),
    regions: z
      .strictObject({ allow: z.array(z.string()).optional(), deny: z.array(z.string()).optional() })
      .optional(),
  }),
])

export const catalogSchema = z.strictObject({
  product: z.string().min(1),
  upgradeUrl: z.url({ protocol: /^https?$/ }),
  graceDays: z.int().min(0).max(365).default(14),
  plans: z.record(
    z.string().regex(/^[a-z0-9-]{1,64}$/),
    z.strictObject({
      name: z.string().min(1),
      tier: z.int().nonnegative(),
      features: z.record(featureName, catalogFeature),
    }),
  ),
  addons: z
    .record(
      z.string().regex(/^[a-z0-9-]{1,64}$/),
      z.strictObject({ name: z.string().min(1), features: z.record(featureName, catalogFeature) }),
    )
    .default({}),
  /** Metrics that are metered for billing without a cap in any plan. */
  meters: z.array(featureName).default([]),
})

export type Catalog = z.output<typeof catalogSchema>
type CatalogFeature = z.output<typeof catalogFeature>

/** Reads and validates a catalog file; a bad catalog stops the server at start, with the paths that are wrong. */
export function loadCatalog(path: string): Catalog {
  const parsed = catalogSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')))
  if (!parsed.success) throw new Error(`invalid catalog ${path}:\n${z.prettifyError(parsed.error)}`)
  return parsed.data
}

/** Every metric the server accepts usage for: capped features of any plan or add-on, and the listed meters. */
export function meters(catalog: Catalog): Set<string> {
  const found = new Set(catalog.meters)
  for (const group of [...Object.values(catalog.plans), ...Object.values(catalog.addons)])
    for (const [name, feature] of Object.entries(group.features))
      if (feature !== true && feature.cap !== undefined) found.add(name)
  return found
}

/** What a license holds, as far as the catalog is concerned. */
export interface LicenseTerms {
  sku: string
  seats: number
  addons: readonly string[]
  grants: readonly string[]
}

/** A catalog feature as a token claim, with seats filled in and the cap's window left to the caller. */
function claimOf(feature: CatalogFeature, seats: number): FeatureClaim | true {
  if (feature === true) return true
  const claim: FeatureClaim = {}
  if (feature.limit !== undefined) claim.limit = feature.limit === 'seats' ? seats : feature.limit
  if (feature.roles) claim.roles = feature.roles
  if (feature.regions) claim.regions = feature.regions
  return claim
}

/** The cheapest plan (lowest tier) that has `feature`: where an upgrade hint points. */
function cheapestPlanWith(catalog: Catalog, feature: string, aboveTier: number): string | undefined {
  let best: [string, number] | undefined
  for (const [id, plan] of Object.entries(catalog.plans)) {
    if (plan.tier <= aboveTier || !(feature in plan.features)) continue
    if (best === undefined || plan.tier < best[1]) best = [id, plan.tier]
  }
  return best?.[0]
}

/**
 * The `ent` claim for a license, minus usage: plan features, add-on features, approved grants, and upgrade hints
 * for every feature the catalog sells that this license lacks. Caps are returned separately so the caller can fill
 * in the window and the usage snapshot.
 */
export function entitlementFor(
  catalog: Catalog,
  terms: LicenseTerms,
): {
  ent: Omit<EntitlementClaim, 'v'>
  caps: Map<string, { limit: number; period: z.output<typeof period> }>
} {
  const plan = catalog.plans[terms.sku]
  if (plan === undefined) throw new Error(`unknown sku ${terms.sku}`)
  const features: Record<string, FeatureClaim | true> = {}
  const caps = new Map<string, { limit: number; period: z.output<typeof period> }>()
  const add = (name: string, feature: CatalogFeature) => {
    features[name] = claimOf(feature, terms.seats)
    if (feature !== true && feature.cap) caps.set(name, feature.cap)
  }
  for (const [name, feature] of Object.entries(plan.features)) add(name, feature)
  for (const addon of terms.addons)
    for (const [name, feature] of Object.entries(catalog.addons[addon]?.features ?? {})) add(name, feature)
  for (const name of terms.grants) {
    if (name in features) continue
    // A granted feature comes as the cheapest plan that sells it defines it, or as a plain flag.
    const from = cheapestPlanWith(catalog, name, -1)
    add(name, from ? catalog.plans[from]!.features[name]! : true)
  }
  // A capped or limited feature the plan has points at the cheapest higher plan that gives more of it.
  for (const [name, claim] of Object.entries(features)) {
    const mine = plan.features[name]
    if (claim === true || mine === undefined || mine === true) continue
    let best: [string, number] | undefined
    for (const [id, other] of Object.entries(catalog.plans)) {
      const theirs = other.features[name]
      if (other.tier <= plan.tier || theirs === undefined || theirs === true) continue
      const more =
        (mine.cap && theirs.cap && theirs.cap.limit > mine.cap.limit) ||
        (typeof mine.limit === 'number' && typeof theirs.limit === 'number' && theirs.limit > mine.limit)
      if (more && (best === undefined || other.tier < best[1])) best = [id, other.tier]
    }
    if (best) claim.upgrade = { plan: best[0], url: `${catalog.upgradeUrl}?plan=${best[0]}` }
  }
  const upgrades: Record<string, UpgradeHint> = {}
  for (const [id, other] of Object.entries(catalog.plans)) {
    for (const name of Object.keys(other.features)) {
      if (name in features || name in upgrades) continue
      const target = cheapestPlanWith(catalog, name, plan.tier) ?? id
      upgrades[name] = { plan: target, url: `${catalog.upgradeUrl}?plan=${target}` }
    }
  }
  for (const [id, addon] of Object.entries(catalog.addons)) {
    for (const name of Object.keys(addon.features)) {
      if (name in features || name in upgrades) continue
      upgrades[name] = { addon: id, url: `${catalog.upgradeUrl}?addon=${id}` }
    }
  }
  return {
    ent: {
      plan: { id: terms.sku, name: plan.name, tier: plan.tier },
      addons: [...terms.addons],
      features,
      devices: { max: terms.seats },
      upgrade: { url: catalog.upgradeUrl },
      upgrades,
    },
    caps,
  }
}
