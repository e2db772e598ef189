import type {
  EntitlementTokenClaims,
  FeatureClaim,
  Plan,
  RegionPolicy,
  Term,
  UpgradeHint,
  UsagePeriod,
} from './claims.js'
import type { CreditCategory } from './credits.js'
import { FrozenMap, frozenMap, type KeyLayout, keyLayout } from './frozen-map.js'
import { createInterner } from './interner.js'
import { version2 } from './version-2-code.js'

/**
 * A metered cap as the decision engine reads it: what the plan says, the same for everyone on it. What a customer
 * has used of it is in {@link Entitlements.usage}.
 */
export interface FeatureCap {
  readonly limit: number
  readonly period: UsagePeriod
  /** Past `limit` is allowed as overage, up to `ceiling` if there is one. */
  readonly soft: boolean
  readonly ceiling: number | undefined
  /** Percentages of `limit` to be told of, ascending. */
  readonly thresholds: readonly number[] | undefined
}

/** A customer's usage of one metered cap, as the server counted it when it signed the token. Epoch milliseconds. */
export interface CapUsage {
  /** Units the server had counted in the window ending at `resetsAt`. */
  readonly used: number
  /** The end of the window `used` was counted in; `undefined` for a cap whose period is `total`. */
  readonly resetsAt: number | undefined
  /** When `used` was counted, if the server said; else `undefined`. */
  readonly asOf: number | undefined
}

/** One named resource's own grant in a per-resource feature. */
export interface ResourceGrantModel {
  /** Whether this resource has the feature, when it says (else the feature's `per.enabled`). */
  readonly enabled: boolean | undefined
  readonly limit: number | undefined
  readonly capLimit: number | undefined
  /** What the server had counted for this resource in the window ending at the cap's `resetsAt`. */
  readonly used: number
}

/** A feature granted per resource of one kind, as the decision engine reads it. Times are epoch milliseconds. */
export interface FeaturePer {
  readonly kind: string
  /** Whether a resource the token does not name has the feature. */
  readonly enabled: boolean
  readonly limit: number | undefined
  /** Each resource's cap; its window is the feature's `cap`'s, or its own. */
  readonly cap:
    | {
        readonly limit: number
        readonly period: UsagePeriod
        readonly resetsAt: number | undefined
        readonly soft: boolean
        readonly ceiling: number | undefined
        readonly thresholds: readonly number[] | undefined
      }
    | undefined
  /** The resources the token names, by `kind:id` (as a check names them). */
  readonly resources: ReadonlyMap<string, ResourceGrantModel>
}

/** A floating-license pool as the decision engine and the lease keeper read it. Lengths in milliseconds. */
export interface FeaturePool {
  readonly name: string
  readonly seats: number
  readonly holder: 'machine' | 'process' | 'user'
  readonly ttlMs: number
  readonly heartbeatMs: number
  readonly revivalMs: number
  readonly graceMs: number
  /** Borrowing: the longest borrow, and how many seats are never borrowed. */
  readonly borrow: { readonly maxMs: number; readonly reserve: number } | undefined
}

/** One credit grant as the decision engine reads it. Times are epoch milliseconds. */
export interface CreditGrantModel {
  readonly id: string
  /** Credits left in it at the snapshot. */
  readonly remaining: number
  readonly priority: number
  readonly category: CreditCategory
  readonly startsAt: number | undefined
  readonly expiresAt: number | undefined
}

/** One credit type's balance snapshot as the decision engine reads it. Times are epoch milliseconds. */
export interface CreditBalanceModel {
  readonly type: string
  /** The grants, in the burn order. */
  readonly grants: readonly CreditGrantModel[]
  /** When the server's ledger was read. */
  readonly asOf: number
  /** Credits the server had burned in all, ever, at `asOf`. */
  readonly spent: number
  /** How far below zero spending may go. */
  readonly overdraft: number
  /** Past a snapshot this old, at most `spend` credits may have been spent since it. */
  readonly offline: { readonly afterMs: number; readonly spend: number } | undefined
}

/** What a feature or metric costs: `amount` credits of `type` per `per` units. */
export interface CreditCostModel {
  readonly type: string
  readonly amount: number
  readonly per: number
}

/** Region policy with codes upper-cased once, at verification. */
export interface RegionRule {
  readonly allow: readonly string[] | undefined
  readonly deny: readonly string[] | undefined
}

/** A term's ends, epoch milliseconds; each `undefined` when the claims do not say. */
export interface TermModel {
  readonly expiresAt: number | undefined
  readonly graceEndsAt: number | undefined
  readonly trialEndsAt: number | undefined
}

/**
 * One granted feature with the token-wide defaults already applied (regions, roles, upgrade hint, pool), so a
 * decision reads one object. Its term is its own: where it says nothing, the token's {@link Entitlements.term}
 * holds (`featureTerm()` reads the two together). Times are epoch milliseconds.
 *
 * A feature carries no customer's term so that everyone on a plan shares one: terms end on each customer's own
 * second, and a term in every feature made every feature of every customer a copy of its own.
 */
export interface Feature {
  readonly name: string
  readonly addon: string | undefined
  readonly limit: number | undefined
  /** The numeric limit is soft: past it is allowed as overage, up to `ceiling` if there is one. */
  readonly soft: boolean
  readonly ceiling: number | undefined
  /** Percentages of the numeric limit to be told of, ascending. */
  readonly thresholds: readonly number[] | undefined
  readonly cap: FeatureCap | undefined
  /** The feature's own term, where its claim has one; each end it leaves out is the token's. */
  readonly term: TermModel | undefined
  readonly regions: RegionRule | undefined
  readonly roles: readonly string[] | undefined
  readonly upgrade: UpgradeHint | undefined
  /** Granted per resource of a kind (format version 2), else `undefined`. */
  readonly per: FeaturePer | undefined
  /** The floating-license pool a lease of which this feature needs (format version 2), else `undefined`. */
  readonly pool: FeaturePool | undefined
  /** What one unit of it costs in credits (format version 2), else `undefined`. */
  readonly cost: CreditCostModel | undefined
}

/** What a verified token says a customer bought. Produced by the verifier; read by the decision engine. */
export interface Entitlements {
  /** The customer or account (`sub`). */
  readonly subject: string
  readonly issuer: string
  readonly audience: readonly string[]
  /** `jti`: the id revocation lists name. */
  readonly tokenId: string
  /** Epoch milliseconds. */
  readonly issuedAt: number
  readonly notBefore: number | undefined
  /** When the token itself stops being accepted (`exp`), epoch milliseconds. */
  readonly expiresAt: number
  readonly keyId: string | undefined
  readonly algorithm: string
  readonly plan: Plan
  /** The license's term: what every feature whose own term does not say inherits. */
  readonly term: TermModel
  readonly addons: readonly string[]
  /**
   * Granted features by name. A read-only `Map`, so that no name can reach `Object.prototype`. It logs and
   * inspects like a `Map` and writes its entries as JSON, but `structuredClone` and `postMessage` do not copy it:
   * to hand entitlements to a worker or another process, hand over the token (and verify it there) or a
   * `client.snapshot()`.
   */
  readonly features: ReadonlyMap<string, Feature>
  readonly devices: { readonly max: number | undefined; readonly fingerprints: readonly string[] | undefined }
  /**
   * Each metered cap's usage at signing, by feature name: one entry for every feature with a `cap`. Apart from the
   * features, which are the plan's and shared by everyone on it.
   */
  readonly usage: ReadonlyMap<string, CapUsage>
  /** Hints for features not in the plan. */
  readonly upgrades: ReadonlyMap<string, UpgradeHint>
  readonly upgrade: UpgradeHint | undefined
  /** Floating-license pools by name (format version 2); empty when the license floats nowhere. */
  readonly pools: ReadonlyMap<string, FeaturePool>
  /** Credit balances by credit type (format version 2); empty when the customer holds no credits. */
  readonly credits: ReadonlyMap<string, CreditBalanceModel>
  /** What features and metrics cost in credits, by name; empty when nothing does. */
  readonly costs: ReadonlyMap<string, CreditCostModel>
}

export const seconds = (value: number | undefined): number | undefined =>
  value === undefined ? undefined : value * 1000

/**
 * Shared across every token this process verifies: the parts of a read model that are the same for everyone on a
 * plan (the plan, hints, role lists, region rules, flag and limit features, the feature layout) are kept once.
 * What differs per customer (subject, token id, times, metered caps with their usage) is not interned.
 */
export const intern = createInterner()
export const key = (kind: string, value: unknown) => `${kind}${JSON.stringify(value)}`

/**
 * Whether two values parsed from JSON are equal. Most tokens a service verifies are on a plan it saw a moment ago:
 * comparing a claim with the last one seen finds the shared value without the JSON key the interner needs (a
 * string a feature, made and dropped per token, about a third of what building a read model allocated).
 */
function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || !a || !b || Array.isArray(a) !== Array.isArray(b))
    return false
  // Arrays (role lists, thresholds, add-ons) by index: for-in names each index as a string and reads the element
  // back by that string, the slow way. Through for-in, comparing was a fifth of building a read model (2026-12-05).
  if (Array.isArray(a)) {
    const other = b as readonly unknown[]
    if (a.length !== other.length) return false
    for (let i = 0; i < a.length; i++) if (!sameJson(a[i], other[i])) return false
    return true
  }
  // Keys counted with for-in, not listed with Object.keys: a list per object compared allocated as much as the JSON
  // keys it replaced. An inherited key (a polluted prototype) is the same value on both sides: it changes nothing.
  let keys = 0
  for (const name in a) {
    if (!sameJson((a as Record<string, unknown>)[name], (b as Record<string, unknown>)[name])) return false
    keys++
  }
  for (const _ in b) keys--
  return keys === 0
}

/**
 * The last value seen of each kind beside what it was shared as: compared first, so a run of tokens on one plan
 * makes no key. The value kept is a copy, made from its key: nothing a caller holds can change it. Each table has
 * one `share` for its misses, given the value, its key and anything else it needs as `arg`: a hit makes nothing
 * (no key, no closure), and it runs for every feature of every token loaded.
 */
function lastSeen<V, T, A = undefined>(share: (json: string, value: T, kind: string, arg: A) => V) {
  const last = new Map<string, { readonly value: unknown; readonly made: V }>()
  return function find(kind: string, value: T, arg?: A): V {
    const seen = last.get(kind)
    if (seen !== undefined && sameJson(seen.value, value)) return seen.made
    const json = JSON.stringify(value)
    const made = share(json, value, kind, arg as A)
    // Bounded: feature names come from tokens, and a context's names from every token of its plans.
    if (last.size >= 1024) last.clear()
    last.set(kind, { value: JSON.parse(json), made })
    return made
  }
}

/**
 * What every feature of a token inherits (its defaults: regions, roles, hints, pools, costs; not the term, which is
 * the customer's): its features seen last by name, each made with the defaults of the first token of this context
 * (every later one's are equal to them: they are its key).
 */
interface Context {
  readonly features: (name: string, claim: FeatureClaim) => Feature
}
let contexts = 0
/** Contexts seen last, by plan: a service's customers on a handful of plans each find theirs without a key. */
const contextOf = lastSeen<Context, unknown, FeatureDefaults>((json, _inherited, _plan, defaults) =>
  intern(`context${json}`, () => {
    const id = String(++contexts)
    return {
      features: lastSeen<Feature, FeatureClaim>((claimJson, claim, name) =>
        intern(`feature${id}\u0000${name}\u0000${claimJson}`, () => makeFeature(name, claim, defaults)),
      ),
    }
  }),
)
const EMPTY: readonly never[] = Object.freeze([])
/** A feature granted as `true`: one claim object for all of them (it is only read). */
const PLAIN_FLAG: FeatureClaim = Object.freeze({})
const NO_UPGRADES: ReadonlyMap<string, UpgradeHint> = new FrozenMap(keyLayout([]), [])
/** Layouts by their number of keys: the features', the upgrades' and the pools' of one plan each find theirs. */
const lastLayouts = lastSeen<KeyLayout, readonly string[]>((json, names) =>
  intern(`layout${json}`, () => keyLayout(names)),
)
export const layoutFor = (names: readonly string[]) => lastLayouts(String(names.length), names)

/** Strings every customer's model repeats (the issuer, the key id, the algorithm), one copy each. */
const strings = new Map<string, string>()
function sharedString(value: string): string {
  const found = strings.get(value)
  if (found !== undefined) return found
  if (strings.size >= 4096) strings.clear()
  strings.set(value, value)
  return value
}

const lastShared = lastSeen<object, object>((json, value, kind) =>
  intern(`${kind}${json}`, () => deepFreeze(value)),
)
const shared = <T extends object>(kind: string, value: T | undefined): T | undefined =>
  value === undefined ? undefined : (lastShared(kind, value) as T)

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner)
    Object.freeze(value)
  }
  return value
}

const lastRegions = lastSeen<RegionRule, RegionPolicy>((json, policy) =>
  intern(`regions${json}`, () =>
    Object.freeze({
      allow: policy.allow && Object.freeze(policy.allow.map((code) => code.toUpperCase())),
      deny: policy.deny && Object.freeze(policy.deny.map((code) => code.toUpperCase())),
    }),
  ),
)
const regionRule = (policy: RegionPolicy | undefined): RegionRule | undefined =>
  policy && lastRegions('regions', policy)

/**
 * Terms in milliseconds, the one made last given again when the next is equal: customers whose terms end together
 * (a co-termed contract, a fleet's tokens for one customer) share one, and each feature's own term is the plan's.
 * Compared end by end: a term of its own per customer is the common case, and it must cost no JSON key.
 */
function termModels() {
  let last: { readonly claim: Term; readonly made: TermModel } | undefined
  return (term: Term): TermModel => {
    if (
      last !== undefined &&
      last.claim.expiresAt === term.expiresAt &&
      last.claim.graceEndsAt === term.graceEndsAt &&
      last.claim.trialEndsAt === term.trialEndsAt
    )
      return last.made
    const made = Object.freeze({
      expiresAt: seconds(term.expiresAt),
      graceEndsAt: seconds(term.graceEndsAt),
      trialEndsAt: seconds(term.trialEndsAt),
    })
    last = {
      claim: { expiresAt: term.expiresAt, graceEndsAt: term.graceEndsAt, trialEndsAt: term.trialEndsAt },
      made,
    }
    return made
  }
}
const tokenTerm = termModels()
const ownTerm = termModels()

/** What a feature takes from its token when it does not say: its defaults, pools and costs. */
type FeatureDefaults = Pick<Feature, 'regions' | 'roles' | 'upgrade' | 'pool'> & {
  readonly pools: ReadonlyMap<string, FeaturePool>
  readonly costs: ReadonlyMap<string, CreditCostModel>
}

function feature(name: string, claim: FeatureClaim, defaults: FeatureDefaults, context: Context): Feature {
  const per = claim.per
  // A per-resource feature carries this customer's own usage (its resources' snapshots, its window): its alone,
  // and interning it would only churn the table.
  if (per !== undefined && (per.resources !== undefined || per.cap !== undefined))
    return makeFeature(name, claim, defaults)
  // A metered cap's usage is the customer's (Entitlements.usage): the feature is found by its claim without it.
  if (claim.cap !== undefined) return context.features(name, withoutUsage(claim, claim.cap))
  return context.features(name, claim)
}

/** A capped feature's claim as the plan says it: its cap without this customer's usage and window. */
function withoutUsage(claim: FeatureClaim, cap: NonNullable<FeatureClaim['cap']>): FeatureClaim {
  const { used: _used, resetsAt: _resetsAt, asOf: _asOf, ...plan } = cap
  return { ...claim, cap: plan as NonNullable<FeatureClaim['cap']> }
}

/** A cap's usage at signing in milliseconds. */
function capUsage(cap: NonNullable<FeatureClaim['cap']>): CapUsage {
  return Object.freeze({
    used: cap.used,
    resetsAt: seconds(cap.resetsAt),
    asOf: cap.asOf === undefined ? undefined : Math.round(cap.asOf * 1000),
  })
}

function makeFeature(name: string, claim: FeatureClaim, defaults: FeatureDefaults): Feature {
  const own = claim.term
  return Object.freeze({
    name,
    addon: claim.addon,
    limit: claim.limit,
    soft: claim.soft === true,
    ceiling: claim.ceiling,
    thresholds: claim.thresholds === undefined ? undefined : Object.freeze([...claim.thresholds]),
    cap: claim.cap
      ? Object.freeze({
          limit: claim.cap.limit,
          period: claim.cap.period,
          soft: claim.cap.soft === true,
          ceiling: claim.cap.ceiling,
          thresholds:
            claim.cap.thresholds === undefined ? undefined : Object.freeze([...claim.cap.thresholds]),
        })
      : undefined,
    term: own === undefined ? undefined : ownTerm(own),
    regions: claim.regions ? regionRule(claim.regions) : defaults.regions,
    roles: shared('roles', claim.roles) ?? defaults.roles,
    upgrade: shared('upgrade', claim.upgrade) ?? defaults.upgrade,
    per: claim.per === undefined ? undefined : version2().perModel(claim.per, claim.cap),
    pool: claim.pool === undefined ? defaults.pool : defaults.pools.get(claim.pool),
    cost: defaults.costs.size === 0 ? undefined : defaults.costs.get(name),
  })
}

/**
 * The features' map of a token, shared with the token loaded last when it holds the same feature objects in the same
 * order: with the customer's term and usage apart, everyone on a plan holds the same features, and one map serves
 * them all (a map of its own cost each customer about 200 bytes). A per-resource feature's resources are one
 * customer's, so a plan with them has a map per customer, as before.
 */
let lastFeatures:
  | { readonly layout: KeyLayout; readonly values: readonly Feature[]; readonly map: FrozenMap<Feature> }
  | undefined
function featureMap(names: readonly string[], values: readonly Feature[]): ReadonlyMap<string, Feature> {
  const layout = layoutFor(names)
  const last = lastFeatures
  if (last?.layout === layout && sameFeatures(last.values, values)) return last.map
  const map = new FrozenMap(layout, values)
  lastFeatures = { layout, values, map }
  return map
}

function sameFeatures(a: readonly Feature[], b: readonly Feature[]): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Hints for features not in the plan, shared by every token that carries the same ones. */
const lastUpgrades = lastSeen<ReadonlyMap<string, UpgradeHint>, Record<string, UpgradeHint>>(
  (json, upgrades) =>
    intern(`upgrades${json}`, () => {
      const names = Object.keys(upgrades)
      return names.length === 0
        ? NO_UPGRADES
        : frozenMap(
            names,
            names.map((name) => deepFreeze(upgrades[name]!)),
            layoutFor,
          )
    }),
)

/** Builds the read model from validated claims. Features switched off (`enabled: false`) are left out. */
export function toEntitlements(
  claims: EntitlementTokenClaims,
  header: { alg: string; kid?: string | undefined },
): Entitlements {
  const ent = claims.ent
  // Pools and credits are format version 2's: its code is loaded whenever a claim holds them (`claims-check.ts`).
  const pools = ent.pools === undefined ? NO_POOLS : version2().poolsOf(ent.pools)
  const credits = ent.credits === undefined ? NO_CREDITS_OR_COSTS : version2().creditsOf(ent.credits)
  const defaults = {
    costs: credits.costs,
    regions: regionRule(ent.regions),
    roles: shared('roles', ent.roles),
    upgrade: shared('upgrade', ent.upgrade),
    pool: ent.pool === undefined ? undefined : pools.get(ent.pool),
    pools,
  }
  // What every feature of this token inherits (its defaults; not the term, which is the customer's), as one context:
  // each feature's key then holds only its own claim. Told as the claims they are made from (plain data, compared
  // with the plan's last ones before any key is made), not as the models: a model's maps have no fields to compare.
  // (null for what is absent: a copy made from JSON has null there, and must compare equal.)
  const context = contextOf(
    ent.plan.id,
    [
      ent.regions ?? null,
      ent.roles ?? null,
      ent.upgrade ?? null,
      ent.pool ?? null,
      ent.pools ?? null,
      [...credits.costs.entries()],
    ],
    defaults,
  )
  const names: string[] = []
  const values: Feature[] = []
  const capped: string[] = []
  const usage: CapUsage[] = []
  for (const name of Object.keys(ent.features)) {
    const claim = ent.features[name]!
    const normalized: FeatureClaim = claim === true ? PLAIN_FLAG : claim
    if (normalized.enabled === false) continue
    names.push(name)
    values.push(feature(name, normalized, defaults, context))
    if (normalized.cap !== undefined) {
      capped.push(name)
      usage.push(capUsage(normalized.cap))
    }
  }
  const upgrades = ent.upgrades === undefined ? NO_UPGRADES : lastUpgrades('upgrades', ent.upgrades)

  return Object.freeze({
    subject: claims.sub,
    issuer: sharedString(claims.iss),
    audience: shared('aud', typeof claims.aud === 'string' ? [claims.aud] : claims.aud)!,
    tokenId: claims.jti,
    issuedAt: claims.iat * 1000,
    notBefore: seconds(claims.nbf),
    expiresAt: claims.exp * 1000,
    keyId: header.kid === undefined ? undefined : sharedString(header.kid),
    algorithm: sharedString(header.alg),
    plan: shared('plan', ent.plan)!,
    term: ent.term === undefined ? NO_TERM : tokenTerm(ent.term),
    addons: ent.addons?.length ? shared('addons', ent.addons)! : EMPTY,
    features: featureMap(names, values),
    // A copy of the snapshots as long as they are: the array pushed to keeps room for 17, about 100 bytes more.
    usage: capped.length === 0 ? NO_USAGE : frozenMap(capped, usage.slice(), layoutFor),
    devices:
      ent.devices === undefined
        ? NO_DEVICES
        : intern(key('devices', ent.devices), () =>
            Object.freeze({ max: ent.devices!.max, fingerprints: deepFreeze(ent.devices!.fingerprints) }),
          ),
    upgrades,
    upgrade: defaults.upgrade,
    pools,
    credits: credits.balances,
    costs: credits.costs,
  })
}

const NO_CREDITS: ReadonlyMap<string, CreditBalanceModel> = new FrozenMap(keyLayout([]), [])
export const NO_COSTS: ReadonlyMap<string, CreditCostModel> = new FrozenMap(keyLayout([]), [])
/** A token without credits: no balances, and nothing costs anything. */
export const NO_CREDITS_OR_COSTS = { balances: NO_CREDITS, costs: NO_COSTS }

const NO_USAGE: ReadonlyMap<string, CapUsage> = new FrozenMap(keyLayout([]), [])

export const NO_POOLS: ReadonlyMap<string, FeaturePool> = new FrozenMap(keyLayout([]), [])

const NO_TERM: TermModel = Object.freeze({
  expiresAt: undefined,
  graceEndsAt: undefined,
  trialEndsAt: undefined,
})

const NO_DEVICES = Object.freeze({ max: undefined, fingerprints: undefined })
