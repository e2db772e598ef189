import { readFileSync } from 'node:fs'
import type { EntitlementClaim, FeatureClaim, Pool, UpgradeHint } from 'entitle'
import * as z from 'zod'

const featureName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a feature name: lowercase, digits, . _ -')
const period = z.enum(['hour', 'day', 'week', 'month', 'year', 'total'])

/** A metered cap as the catalog sells it. */
export interface CatalogCap {
  readonly limit: number
  readonly period: Period
  readonly soft?: true | undefined
  readonly ceiling?: number | undefined
  readonly thresholds?: readonly number[] | undefined
}

/**
 * Sold per resource of a kind: each resource its own numeric `limit`, or its own `cap.limit` in the window of the
 * feature's cap (which still holds over their sum). Tokens that carry it are format version 2.
 */
const perResource = z.strictObject({
  kind: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'a resource kind: lowercase, digits, _ -'),
  limit: z.int().nonnegative().optional(),
  cap: z.strictObject({ limit: z.int().nonnegative() }).optional(),
})

/** One feature as the catalog sells it. `limit: "seats"` takes the number of seats of the order. */
const catalogFeature = z.union([
  z.literal(true),
  z
    .strictObject({
      limit: z.union([z.int().nonnegative(), z.literal('seats')]).optional(),
      cap: z
        .strictObject({
          limit: z.int().nonnegative(),
          period,
          // A soft cap: past `limit` is allowed and billed as overage, up to `ceiling` if set.
          soft: z.literal(true).optional(),
          ceiling: z.int().nonnegative().optional(),
          // Percentages of `limit` at which the app (and this server's usage report) tell of usage.
          thresholds: z.array(z.int().min(1).max(1000)).min(1).max(10).optional(),
        })
        .refine((cap) => cap.ceiling === undefined || (cap.soft === true && cap.ceiling >= cap.limit), {
          message: 'a ceiling needs soft: true and is at least the limit',
        })
        .refine((cap) => (cap.thresholds ?? []).every((t, i, all) => i === 0 || t > all[i - 1]!), {
          message: 'thresholds ascending, each once',
        })
        .optional(),
      roles: z.array(z.string().min(1)).max(32).optional(),
      regions: z
        .strictObject({ allow: z.array(z.string()).optional(), deny: z.array(z.string()).optional() })
        .optional(),
      per: perResource.optional(),
      /** Needs a lease of this pool (the plan's or add-on's `pools`). */
      pool: featureName.optional(),
    })
    .refine((feature) => feature.per?.cap === undefined || feature.cap !== undefined, {
      message: "per.cap counts in the window of the feature's cap: give the feature a cap",
    })
    .refine((feature) => feature.per === undefined || feature.limit === undefined, {
      message: 'a feature sold per resource has its numeric limit in per.limit',
    }),
])

/**
 * A floating-license pool as the catalog sells it: `seats: "seats"` takes the order's seats. Lengths in seconds.
 * Tokens that carry one are format version 2.
 */
const catalogPool = z
  .strictObject({
    seats: z.union([z.int().min(1).max(1_000_000), z.literal('seats')]),
    holder: z.enum(['machine', 'process', 'user']),
    ttl: z.int().min(10).max(86_400),
    heartbeat: z.int().min(1).max(86_400),
    revival: z.int().min(0).max(604_800).optional(),
    grace: z.int().min(0).max(86_400).optional(),
    borrow: z
      .strictObject({ max: z.int().min(60).max(31_536_000), reserve: z.int().nonnegative().optional() })
      .optional(),
  })
  .refine((pool) => pool.heartbeat < pool.ttl, { message: 'heartbeat must be less than ttl' })
const pools = z.record(featureName, catalogPool)
export type CatalogPool = z.output<typeof catalogPool>

/** A plan's or add-on's features name only pools it defines; `pool` (the whole license floats) is one of them. */
const poolsDefined = (group: {
  features: Record<string, CatalogFeature>
  pools?: Record<string, unknown> | undefined
  pool?: string | undefined
}) =>
  [group.pool, ...Object.values(group.features).map((f) => (f === true ? undefined : f.pool))].every(
    (name) => name === undefined || Object.hasOwn(group.pools ?? {}, name),
  )
const POOLS_DEFINED = { message: 'a pool named by the group or a feature is not in its pools' }

const planId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'a plan or add-on id: lowercase, digits, -')
const features = z.record(featureName, catalogFeature)

/**
 * A plan's or add-on's credit allowance: `monthly` credits granted at the start of each month of the term
 * (category `allowance`, expiring at the month's end), of which at most `rollover` carry into the next month.
 */
const allowance = z.strictObject({
  monthly: z.number().positive().max(1e12),
  rollover: z.number().nonnegative().max(1e12).default(0),
})
const allowances = z.record(featureName, allowance)

/** A credit type: what costs it, how far below zero it may go, and how much an app may spend past an old snapshot. */
const creditType = z.strictObject({
  name: z.string().min(1),
  costs: z.record(
    featureName,
    z.strictObject({ amount: z.number().nonnegative().max(1e9), per: z.int().min(1).max(1e9).optional() }),
  ),
  overdraft: z.number().nonnegative().max(1e12).default(0),
  offline: z
    .strictObject({ after: z.int().min(0).max(31_536_000), spend: z.number().nonnegative() })
    .optional(),
})

/** A credit pack: an orderable top-up (`type: "topup"`), `amount` credits of a type, lasting `expiresInDays` if set. */
const pack = z.strictObject({
  credits: featureName,
  amount: z.number().positive().max(1e12),
  expiresInDays: z.int().min(1).max(3650).optional(),
})

/** The catalog file (`catalog.json`), as zod reads it. */
export const catalogFileSchema = z.strictObject({
  product: z.string().min(1),
  upgradeUrl: z.url({ protocol: /^https?$/ }),
  graceDays: z.int().min(0).max(365).default(14),
  plans: z.record(
    planId,
    z
      .strictObject({
        name: z.string().min(1),
        tier: z.int().nonnegative(),
        /** No longer sold: orders for it are refused, licenses that hold it keep working as sold. */
        retired: z.boolean().default(false),
        /** How many trials of this plan one customer may take, ever (cancelled ones count). Default 1. */
        trialsPerCustomer: z.int().min(0).max(100).default(1),
        features,
        pools: pools.optional(),
        /** The pool every feature of the plan needs a lease of: the license floats. */
        pool: featureName.optional(),
        credits: allowances.optional(),
      })
      .refine(poolsDefined, POOLS_DEFINED),
  ),
  addons: z
    .record(
      planId,
      z
        .strictObject({
          name: z.string().min(1),
          retired: z.boolean().default(false),
          features,
          pools: pools.optional(),
          credits: allowances.optional(),
        })
        .refine(poolsDefined, POOLS_DEFINED),
    )
    .default({}),
  /** Metrics that are metered for billing without a cap in any plan. */
  meters: z.array(featureName).default([]),
  /** Credit types, by name (a credit type's name is no feature's). */
  credits: z.record(featureName, creditType).default({}),
  /** Credit packs sold as top-ups, by SKU. */
  packs: z.record(planId, pack).default({}),
})

type CatalogFeature = z.output<typeof catalogFeature>
type Period = z.output<typeof period>

export type CatalogAllowance = z.output<typeof allowance>
export type CatalogCreditType = z.output<typeof creditType>
export type CatalogPack = z.output<typeof pack>

/** A plan or an add-on: its features by name, and the floating-license pools they draw on. */
export interface CatalogGroup {
  readonly name: string
  readonly retired: boolean
  readonly features: ReadonlyMap<string, CatalogFeature>
  readonly pools: ReadonlyMap<string, CatalogPool>
  /** Credit allowances by credit type. */
  readonly credits: ReadonlyMap<string, CatalogAllowance>
  /** A plan whose every feature floats: the pool they need a lease of. */
  readonly pool?: string | undefined
}
export interface CatalogPlan extends CatalogGroup {
  readonly tier: number
  readonly trialsPerCustomer: number
}

/**
 * The catalog as the server uses it: every name from outside (an order's SKU, an add-on, a requested feature) is
 * looked up in a `Map`, so `constructor` or `__proto__` is just a name that is not there.
 */
export interface Catalog {
  readonly product: string
  readonly upgradeUrl: string
  readonly graceDays: number
  readonly plans: ReadonlyMap<string, CatalogPlan>
  readonly addons: ReadonlyMap<string, CatalogGroup>
  /**
   * Every metric the server accepts usage for: capped features of any plan or add-on, the listed meters, and what
   * costs credits.
   */
  readonly meters: ReadonlySet<string>
  readonly credits: ReadonlyMap<string, CatalogCreditType>
  /** What each costed feature or metric costs, and in which credit type. */
  readonly costs: ReadonlyMap<
    string,
    { readonly type: string; readonly amount: number; readonly per: number }
  >
  readonly packs: ReadonlyMap<string, CatalogPack>
}

/** Builds the server's catalog from a parsed catalog file. */
export function catalogOf(file: z.output<typeof catalogFileSchema>): Catalog {
  const group = (g: {
    name: string
    retired: boolean
    features: Record<string, CatalogFeature>
    pools?: Record<string, CatalogPool> | undefined
    pool?: string | undefined
    credits?: Record<string, CatalogAllowance> | undefined
  }) => ({
    name: g.name,
    retired: g.retired,
    features: new Map(Object.entries(g.features)),
    pools: new Map(Object.entries(g.pools ?? {})),
    pool: g.pool,
    credits: new Map(Object.entries(g.credits ?? {})),
  })
  const plans = new Map(
    Object.entries(file.plans).map(([id, plan]) => [
      id,
      { ...group(plan), tier: plan.tier, trialsPerCustomer: plan.trialsPerCustomer },
    ]),
  )
  const addons = new Map(Object.entries(file.addons).map(([id, addon]) => [id, group(addon)]))
  const meters = new Set(file.meters)
  for (const g of [...plans.values(), ...addons.values()])
    for (const [name, feature] of g.features)
      if (feature !== true && feature.cap !== undefined) meters.add(name)
  const costs = new Map<string, { type: string; amount: number; per: number }>()
  for (const [type, credit] of Object.entries(file.credits)) {
    for (const [name, cost] of Object.entries(credit.costs)) {
      if (costs.has(name)) throw new Error(`catalog: ${name} costs credits of two types`)
      costs.set(name, { type, amount: cost.amount, per: cost.per ?? 1 })
      meters.add(name)
    }
  }
  for (const [sku, sold] of Object.entries(file.packs))
    if (!Object.hasOwn(file.credits, sold.credits))
      throw new Error(`catalog: pack ${sku} sells an unknown credit type`)
  for (const g of [...plans.values(), ...addons.values()])
    for (const type of g.credits.keys())
      if (!Object.hasOwn(file.credits, type))
        throw new Error(`catalog: ${g.name} grants an unknown credit type ${type}`)
  for (const type of Object.keys(file.credits))
    if (hasFeature(plans, addons, type)) throw new Error(`catalog: the credit type ${type} is also a feature`)
  return {
    product: file.product,
    upgradeUrl: file.upgradeUrl,
    graceDays: file.graceDays,
    plans,
    addons,
    meters,
    credits: new Map(Object.entries(file.credits)),
    costs,
    packs: new Map(Object.entries(file.packs)),
  }
}

/** Whether a plan or add-on has a feature of this name. */
function hasFeature(
  plans: ReadonlyMap<string, CatalogGroup>,
  addons: ReadonlyMap<string, CatalogGroup>,
  name: string,
) {
  for (const g of [...plans.values(), ...addons.values()]) if (g.features.has(name)) return true
  return false
}

/** Reads and validates a catalog file; a bad catalog stops the server at start, with the paths that are wrong. */
export function loadCatalog(path: string): Catalog {
  const parsed = catalogFileSchema.safeParse(JSON.parse(readFileSync(path, 'utf8')))
  if (!parsed.success) throw new Error(`invalid catalog ${path}:\n${z.prettifyError(parsed.error)}`)
  return catalogOf(parsed.data)
}

/** Whether any plan or add-on sells `feature`. */
export function sells(catalog: Catalog, feature: string): boolean {
  for (const g of [...catalog.plans.values(), ...catalog.addons.values()])
    if (g.features.has(feature)) return true
  return false
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
  if (feature.per) claim.per = { ...feature.per }
  if (feature.pool) claim.pool = feature.pool
  return claim
}

/** A catalog pool as a token claim, with the order's seats filled in. */
function poolClaimOf(pool: CatalogPool, seats: number): Pool {
  const { seats: sold, ...rest } = pool
  return { ...rest, seats: sold === 'seats' ? seats : sold }
}

/** The cheapest plan on sale (lowest tier, above `aboveTier`) that has `feature`: where an upgrade hint points. */
function cheapestPlanWith(catalog: Catalog, feature: string, aboveTier: number): string | undefined {
  let best: [string, number] | undefined
  for (const [id, plan] of catalog.plans) {
    if (plan.retired || plan.tier <= aboveTier || !plan.features.has(feature)) continue
    if (best === undefined || plan.tier < best[1]) best = [id, plan.tier]
  }
  return best?.[0]
}

/**
 * An add-on bought for one resource (`sso@workspace:ws-9`): each of its features the account does not have already
 * is granted per resource, on for that resource only (format version 2), with the add-on as the upgrade hint for
 * the others. Several resources' purchases of one add-on make one grant listing each.
 */
function addForResource(
  catalog: Catalog,
  features: Map<string, FeatureClaim | true>,
  bought: string,
  seats: number,
): void {
  const [addon, resource] = bought.split('@') as [string, string]
  const kind = resource.slice(0, resource.indexOf(':'))
  const id = resource.slice(kind.length + 1)
  for (const [name, feature] of catalog.addons.get(addon)?.features ?? []) {
    const held = features.get(name)
    if (held !== undefined && (held === true || held.per?.enabled !== false || held.per.kind !== kind))
      continue
    const claim = held ?? claimOf(feature, seats)
    const base: FeatureClaim = claim === true ? {} : { ...claim }
    base.per = { kind, enabled: false, resources: { ...base.per?.resources, [id]: { enabled: true } } }
    base.upgrade = { addon, url: `${catalog.upgradeUrl}?addon=${addon}` }
    features.set(name, base)
  }
}

/** The license's plan is not in the catalog: it cannot be priced or issued until the catalog has it again. */
export class UnknownPlanError extends Error {
  constructor(readonly sku: string) {
    super(`the plan ${sku} is not in the catalog`)
  }
}

/**
 * The `ent` claim for a license, minus usage: plan features, add-on features, approved grants, and upgrade hints
 * for every feature the catalog sells that this license lacks. Caps are returned separately so the caller can fill
 * in the window and the usage snapshot.
 *
 * @throws UnknownPlanError when the license's SKU is not in the catalog.
 */
export function entitlementFor(
  catalog: Catalog,
  terms: LicenseTerms,
): {
  ent: Omit<EntitlementClaim, 'v'>
  caps: Map<string, CatalogCap>
} {
  const plan = catalog.plans.get(terms.sku)
  if (plan === undefined) throw new UnknownPlanError(terms.sku)
  const features = new Map<string, FeatureClaim | true>()
  const caps = new Map<string, CatalogCap>()
  const pools = new Map<string, Pool>()
  const add = (name: string, feature: CatalogFeature) => {
    features.set(name, claimOf(feature, terms.seats))
    if (feature !== true && feature.cap) caps.set(name, feature.cap)
  }
  const addPools = (group: CatalogGroup | undefined) => {
    for (const [name, pool] of group?.pools ?? []) pools.set(name, poolClaimOf(pool, terms.seats))
  }
  for (const [name, feature] of plan.features) add(name, feature)
  addPools(plan)
  const forAccount = terms.addons.filter((addon) => !addon.includes('@'))
  for (const addon of forAccount) {
    for (const [name, feature] of catalog.addons.get(addon)?.features ?? []) add(name, feature)
    addPools(catalog.addons.get(addon))
  }
  for (const bought of terms.addons)
    if (bought.includes('@')) addForResource(catalog, features, bought, terms.seats)
  for (const name of terms.grants) {
    if (features.has(name)) continue
    // A granted feature comes as the cheapest plan that sells it defines it, or as a plain flag.
    const from = cheapestPlanWith(catalog, name, -1)
    add(name, (from && catalog.plans.get(from)?.features.get(name)) || true)
  }
  // A feature that came by a grant or a per-resource add-on brings the pool it floats in, as its seller defines it.
  for (const claim of features.values()) {
    if (claim === true || claim.pool === undefined || pools.has(claim.pool)) continue
    for (const group of [...catalog.plans.values(), ...catalog.addons.values()]) {
      const pool = group.pools.get(claim.pool)
      if (pool === undefined) continue
      pools.set(claim.pool, poolClaimOf(pool, terms.seats))
      break
    }
  }
  // A capped or limited feature the plan has points at the cheapest higher plan that gives more of it.
  for (const [name, claim] of features) {
    const mine = plan.features.get(name)
    if (claim === true || mine === undefined || mine === true) continue
    let best: [string, number] | undefined
    for (const [id, other] of catalog.plans) {
      const theirs = other.features.get(name)
      if (other.retired || other.tier <= plan.tier || theirs === undefined || theirs === true) continue
      const more =
        (mine.cap && theirs.cap && theirs.cap.limit > mine.cap.limit) ||
        (typeof mine.limit === 'number' && typeof theirs.limit === 'number' && theirs.limit > mine.limit)
      if (more && (best === undefined || other.tier < best[1])) best = [id, other.tier]
    }
    if (best) claim.upgrade = { plan: best[0], url: `${catalog.upgradeUrl}?plan=${best[0]}` }
  }
  const upgrades = new Map<string, UpgradeHint>()
  for (const [id, other] of catalog.plans) {
    if (other.retired) continue
    for (const name of other.features.keys()) {
      if (features.has(name) || upgrades.has(name)) continue
      const target = cheapestPlanWith(catalog, name, plan.tier) ?? id
      upgrades.set(name, { plan: target, url: `${catalog.upgradeUrl}?plan=${target}` })
    }
  }
  for (const [id, addon] of catalog.addons) {
    if (addon.retired) continue
    for (const name of addon.features.keys()) {
      if (features.has(name) || upgrades.has(name)) continue
      upgrades.set(name, { addon: id, url: `${catalog.upgradeUrl}?addon=${id}` })
    }
  }
  return {
    ent: {
      plan: { id: terms.sku, name: plan.name, tier: plan.tier },
      addons: forAccount,
      features: Object.fromEntries(features),
      devices: { max: terms.seats },
      upgrade: { url: catalog.upgradeUrl },
      upgrades: Object.fromEntries(upgrades),
      // Pools only for a license that floats: everyone else keeps a token every SDK version reads (v1).
      ...(pools.size > 0 ? { pools: Object.fromEntries(pools) } : {}),
      ...(plan.pool !== undefined ? { pool: plan.pool } : {}),
    },
    caps,
  }
}
