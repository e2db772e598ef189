import type {
  EntitlementTokenClaims,
  FeatureClaim,
  Plan,
  RegionPolicy,
  Term,
  UpgradeHint,
  UsagePeriod,
} from './claims.js'

/** A metered cap as the decision engine reads it. Times are epoch milliseconds. */
export interface FeatureCap {
  readonly limit: number
  readonly period: UsagePeriod
  /** Units the server had counted in the window ending at `resetsAt` when it signed the token. */
  readonly used: number
  readonly resetsAt: number | undefined
  /** When `used` was counted (epoch milliseconds), if the server said; else `undefined`. */
  readonly asOf: number | undefined
}

/** Region policy with codes upper-cased once, at verification. */
export interface RegionRule {
  readonly allow: readonly string[] | undefined
  readonly deny: readonly string[] | undefined
}

/**
 * One granted feature with the token-wide defaults already applied (term, regions, roles, upgrade hint), so a
 * decision reads one object. Times are epoch milliseconds.
 */
export interface Feature {
  readonly name: string
  readonly addon: string | undefined
  readonly limit: number | undefined
  readonly cap: FeatureCap | undefined
  readonly expiresAt: number | undefined
  readonly graceEndsAt: number | undefined
  readonly trialEndsAt: number | undefined
  readonly regions: RegionRule | undefined
  readonly roles: readonly string[] | undefined
  readonly upgrade: UpgradeHint | undefined
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
  readonly addons: readonly string[]
  /** Granted features by name. A `Map`, so that no name can reach `Object.prototype`. */
  readonly features: ReadonlyMap<string, Feature>
  readonly devices: { readonly max: number | undefined; readonly fingerprints: readonly string[] | undefined }
  /** Hints for features not in the plan. */
  readonly upgrades: ReadonlyMap<string, UpgradeHint>
  readonly upgrade: UpgradeHint | undefined
  /** The validated claims as signed, for anything the model above does not carry. */
  readonly claims: EntitlementTokenClaims
}

const seconds = (value: number | undefined): number | undefined =>
  value === undefined ? undefined : value * 1000

function regionRule(policy: RegionPolicy | undefined): RegionRule | undefined {
  if (!policy) return undefined
  return Object.freeze({
    allow: policy.allow?.map((code) => code.toUpperCase()),
    deny: policy.deny?.map((code) => code.toUpperCase()),
  })
}

function feature(
  name: string,
  claim: FeatureClaim,
  term: Term | undefined,
  defaults: Pick<Feature, 'regions' | 'roles' | 'upgrade'>,
): Feature {
  const own = claim.term
  return Object.freeze({
    name,
    addon: claim.addon,
    limit: claim.limit,
    cap: claim.cap
      ? Object.freeze({
          limit: claim.cap.limit,
          period: claim.cap.period,
          used: claim.cap.used,
          resetsAt: seconds(claim.cap.resetsAt),
          asOf: claim.cap.asOf === undefined ? undefined : Math.round(claim.cap.asOf * 1000),
        })
      : undefined,
    expiresAt: seconds(own?.expiresAt ?? term?.expiresAt),
    graceEndsAt: seconds(own?.graceEndsAt ?? term?.graceEndsAt),
    trialEndsAt: seconds(own?.trialEndsAt ?? term?.trialEndsAt),
    regions: claim.regions ? regionRule(claim.regions) : defaults.regions,
    roles: claim.roles ?? defaults.roles,
    upgrade: claim.upgrade ?? defaults.upgrade,
  })
}

/** Builds the read model from validated claims. Features switched off (`enabled: false`) are left out. */
export function toEntitlements(
  claims: EntitlementTokenClaims,
  header: { alg: string; kid?: string | undefined },
): Entitlements {
  const ent = claims.ent
  const defaults = { regions: regionRule(ent.regions), roles: ent.roles, upgrade: ent.upgrade }
  const features = new Map<string, Feature>()
  for (const name of Object.keys(ent.features)) {
    const claim = ent.features[name]!
    const normalized: FeatureClaim = claim === true ? {} : claim
    if (normalized.enabled === false) continue
    features.set(name, feature(name, normalized, ent.term, defaults))
  }
  const upgrades = new Map<string, UpgradeHint>()
  for (const name of Object.keys(ent.upgrades ?? {})) upgrades.set(name, ent.upgrades![name]!)

  return Object.freeze({
    subject: claims.sub,
    issuer: claims.iss,
    audience: Object.freeze(typeof claims.aud === 'string' ? [claims.aud] : [...claims.aud]),
    tokenId: claims.jti,
    issuedAt: claims.iat * 1000,
    notBefore: seconds(claims.nbf),
    expiresAt: claims.exp * 1000,
    keyId: header.kid,
    algorithm: header.alg,
    plan: ent.plan,
    addons: Object.freeze([...(ent.addons ?? [])]),
    features,
    devices: Object.freeze({ max: ent.devices?.max, fingerprints: ent.devices?.fingerprints }),
    upgrades,
    upgrade: ent.upgrade,
    claims,
  })
}
