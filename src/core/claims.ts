import * as z from 'zod/mini'
import { isAscending } from './ascending.js'
import { costedTwice, duplicateGrant, typeNamedLikeFeature } from './credit-rules.js'
import { FORMAT_VERSIONS, needsVersion2, unknownPool } from './format-version.js'

/*
 * The entitlement token's claims, as a zod schema. This schema is the single source of truth: `entitle/testing`,
 * the CLI and the reference server validate what they sign against it, `docs/token-schema.json` is generated from
 * it (`npm run schema`), and the verifier's zod-free checker (`claims-check.ts`) is held to it by a differential
 * test.
 *
 * Unknown keys are dropped, not rejected, so a newer server can add informational fields. A server that adds a
 * *restriction* an older SDK would not enforce must bump `ent.v`, which older SDKs reject: ignoring an unknown
 * restriction would grant what was not bought.
 */

/**
 * Builds a schema. Marked free of side effects, so that a bundle which never uses a schema (an app that only
 * verifies: the verifier checks claims without zod) drops it, and zod with it, even from the built package.
 */
/* @__NO_SIDE_EFFECTS__ */
function schema<T>(make: () => T): T {
  return make()
}

const MAX_NAME = 128
const MAX_LIST = 256
/** Seconds since the epoch (JWT NumericDate), up to the year 10000. */
const numericDate = schema(() => z.int().check(z.gte(0), z.lte(253_402_300_799)))
const name = schema(() => z.string().check(z.minLength(1), z.maxLength(MAX_NAME)))
const count = schema(() => z.int().check(z.gte(0)))
const names = schema(() => z.array(name).check(z.maxLength(MAX_LIST)))

/** Where to send a customer who hits a wall. */
export const upgradeHintSchema = schema(() =>
  z.object({
    plan: z.optional(name),
    addon: z.optional(name),
    url: z.optional(z.url({ protocol: /^https?$/ }).check(z.maxLength(2048))),
  }),
)

/** Time bounds of the license or of one feature. Seconds since the epoch. */
export const termSchema = schema(() =>
  z.object({
    /** The paid term ends here. */
    expiresAt: z.optional(numericDate),
    /** After `expiresAt`, access continues, flagged `grace_period`, until this moment. */
    graceEndsAt: z.optional(numericDate),
    /** While before this moment access is a trial (`trial`); after it, `trial_ended`. */
    trialEndsAt: z.optional(numericDate),
  }),
)

/** Geo-fencing by ISO 3166-1 alpha-2 country code or ISO 3166-2 subdivision (`US`, `US-CA`). */
export const regionPolicySchema = schema(() =>
  z.object({
    allow: z.optional(names),
    deny: z.optional(names),
  }),
)

export const devicePolicySchema = schema(() =>
  z.object({
    /** How many devices may be active at once. */
    max: z.optional(count),
    /** The device fingerprints this token is bound to. */
    fingerprints: z.optional(names),
  }),
)

export const usagePeriodSchema = schema(() => z.enum(['hour', 'day', 'week', 'month', 'year', 'total']))

/** Percentages of a limit at which the app and the server are told, ascending, each once (`[80, 100, 150]`). */
const thresholds = schema(() =>
  z.array(z.int().check(z.gte(1), z.lte(1000))).check(z.minLength(1), z.maxLength(10)),
)

/** Thresholds ascending, each once; a ceiling only on a soft limit, and not below the limit. */
function softLimitRules<T extends SoftLimitFields>(limitOf: (value: T) => number | undefined) {
  return [
    z.refine<T>((value: T) => isAscending(value.thresholds), {
      message: 'thresholds must be ascending, each once',
      path: ['thresholds'],
    }),
    z.refine<T>((value: T) => value.ceiling === undefined || value.soft === true, {
      message: 'a ceiling needs soft: true',
      path: ['ceiling'],
    }),
    z.refine<T>(
      (value: T) =>
        value.ceiling === undefined || limitOf(value) === undefined || value.ceiling >= limitOf(value)!,
      { message: 'the ceiling must be at least the limit', path: ['ceiling'] },
    ),
    z.refine<T>((value: T) => value.soft === undefined || limitOf(value) !== undefined, {
      message: 'soft needs a limit',
      path: ['soft'],
    }),
  ] as const
}

/** The fields a soft limit adds to a numeric limit or a metered cap. */
interface SoftLimitFields {
  readonly soft?: true | undefined
  readonly ceiling?: number | undefined
  readonly thresholds?: readonly number[] | undefined
}

/** A metered cap: at most `limit` units per period. */
export const usageCapSchema = schema(() =>
  z
    .object({
      limit: count,
      period: usagePeriodSchema,
      /** Units the server had counted in the current window when it signed the token. */
      used: z.number().check(z.gte(0)),
      /** End of the current window. Required for every period except `total`. */
      resetsAt: z.optional(numericDate),
      /**
       * When `used` was counted, in seconds since the epoch with a fraction (millisecond precision). Clients add the
       * usage they reported after this moment; without it they go by `iat`, which is only precise to the second.
       */
      asOf: z.optional(z.number().check(z.gte(0), z.lte(253_402_300_799))),
      /** Allowed past `limit`: the excess is overage, billed by the server. */
      soft: z.optional(z.literal(true)),
      /** With `soft`: nothing past this is ever allowed or counted. */
      ceiling: z.optional(count),
      thresholds: z.optional(thresholds),
    })
    .check(
      z.refine((cap) => cap.period === 'total' || cap.resetsAt !== undefined, {
        message: 'resetsAt is required unless period is "total"',
        path: ['resetsAt'],
      }),
      ...softLimitRules((cap: SoftLimitFields & { limit: number }) => cap.limit),
    ),
)

/**
 * Each resource's metered cap within a per-resource feature: `limit` units per window, the window being the
 * feature's own `cap`'s when it has one, else `period` (and `resetsAt`) here.
 */
export const resourceCapSchema = schema(() =>
  z
    .object({
      limit: count,
      period: z.optional(usagePeriodSchema),
      resetsAt: z.optional(numericDate),
      soft: z.optional(z.literal(true)),
      ceiling: z.optional(count),
      thresholds: z.optional(thresholds),
    })
    .check(
      z.refine((cap) => cap.period === undefined || cap.period === 'total' || cap.resetsAt !== undefined, {
        message: 'resetsAt is required unless period is "total"',
        path: ['resetsAt'],
      }),
      ...softLimitRules((cap: SoftLimitFields & { limit: number }) => cap.limit),
    ),
)

/** One named resource's own grant: what it bought beyond the default, and its usage when the token was signed. */
export const resourceGrantSchema = schema(() =>
  z.object({
    /** `true`: this resource has the feature though others do not (an add-on for one workspace); `false`: not. */
    enabled: z.optional(z.boolean()),
    /** This resource's numeric limit, instead of `per.limit`. */
    limit: z.optional(count),
    cap: z.optional(
      z.object({
        /** This resource's cap, instead of `per.cap.limit`. */
        limit: z.optional(count),
        /** Units the server had counted for this resource in the current window when it signed. */
        used: z.optional(z.number().check(z.gte(0))),
      }),
    ),
  }),
)

/**
 * A feature granted per resource of one kind (`workspace`, `repository`): each resource has its own limit and
 * counter; the feature's own `cap`, if any, still holds over their sum. Token format version 2.
 */
export const perResourceSchema = schema(() =>
  z.object({
    kind: name,
    /** `false`: only the resources listed with `enabled: true` have the feature. Default `true`. */
    enabled: z.optional(z.boolean()),
    /** Each resource's numeric limit (members per workspace); the app passes the resource's `usage`. */
    limit: z.optional(count),
    cap: z.optional(resourceCapSchema),
    /** The resources with a grant of their own or a usage snapshot, by id: only those, never every resource. */
    resources: z.optional(z.record(name, resourceGrantSchema)),
  }),
)

/** Who counts as one holder of a floating seat: one machine, one process, or one user (wherever they sign in). */
export const poolHolderSchema = schema(() => z.enum(['machine', 'process', 'user']))

/**
 * A floating-license pool: at most `seats` holders at once, each proven by a signed lease token that the license
 * server hands out and renews. Lengths in seconds. Format version 2.
 */
export const poolSchema = schema(() =>
  z
    .object({
      seats: z.int().check(z.gte(1), z.lte(1_000_000)),
      holder: poolHolderSchema,
      /** How long a lease lasts from its last renewal. */
      ttl: z.int().check(z.gte(10), z.lte(86_400)),
      /** How often a holder renews: less than `ttl`, so that a renewal or two may fail and the lease lives. */
      heartbeat: z.int().check(z.gte(1), z.lte(86_400)),
      /** How long after its end a lost lease may be revived by its holder (if a seat is free). Default 0. */
      revival: z.optional(z.int().check(z.gte(0), z.lte(604_800))),
      /** How long a holder keeps working past its lease's end while renewals fail. Default 0. */
      grace: z.optional(z.int().check(z.gte(0), z.lte(86_400))),
      /** Borrowing: a lease of up to `max` seconds for a machine going offline; `reserve` seats never borrowed. */
      borrow: z.optional(
        z.object({
          max: z.int().check(z.gte(60), z.lte(31_536_000)),
          reserve: z.optional(z.int().check(z.gte(0))),
        }),
      ),
    })
    .check(
      z.refine((pool) => pool.heartbeat < pool.ttl, {
        message: 'heartbeat must be less than ttl',
        path: ['heartbeat'],
      }),
      z.refine((pool) => (pool.borrow?.reserve ?? 0) <= pool.seats, {
        message: 'the borrow reserve cannot exceed the seats',
        path: ['borrow', 'reserve'],
      }),
    ),
)

/** One credit grant as of the snapshot: what is left of it, and where it falls in the burn order. */
export const creditGrantSchema = schema(() =>
  z.object({
    id: name,
    /** Credits left in it when the snapshot was taken. */
    remaining: z.number().check(z.gte(0)),
    /** Lower burns first. Default 0. */
    priority: z.optional(z.int().check(z.gte(0), z.lte(1000))),
    /** Promotional burns before an allowance, an allowance before paid. Default `paid`. */
    category: z.optional(z.enum(['promotional', 'allowance', 'paid'])),
    /** Not spendable before this moment. */
    startsAt: z.optional(numericDate),
    /** Worth nothing from this moment on. */
    expiresAt: z.optional(numericDate),
  }),
)

/** What one unit of a feature or metric costs: `amount` credits per `per` units (default 1). */
export const creditCostSchema = schema(() =>
  z.object({
    amount: z.number().check(z.gte(0)),
    per: z.optional(z.int().check(z.gte(1), z.lte(1_000_000_000))),
  }),
)

/**
 * One credit type's balance as the server's ledger stood at `asOf`: its grants, what they cost, and what happens
 * when it runs out. Format version 2.
 */
export const creditBalanceSchema = schema(() =>
  z.object({
    grants: z.array(creditGrantSchema).check(z.maxLength(MAX_LIST)),
    /** When the ledger was read, in seconds since the epoch with a fraction. */
    asOf: z.number().check(z.gte(0), z.lte(253_402_300_799)),
    /** Credits of this type the server had burned in all, ever, at `asOf`: where a fleet's shared count starts. */
    spent: z.number().check(z.gte(0)),
    /** How far below zero spending may go (billed by the server). Default 0: deny at zero. */
    overdraft: z.optional(z.number().check(z.gte(0))),
    /** Once the snapshot is older than `after` seconds, at most `spend` credits may have been spent since it. */
    offline: z.optional(
      z.object({ after: z.int().check(z.gte(0), z.lte(31_536_000)), spend: z.number().check(z.gte(0)) }),
    ),
    /** Features and metrics that cost credits of this type, by name. */
    costs: z.optional(z.record(name, creditCostSchema)),
  }),
)

/** A per-resource feature's window: its own `cap`'s when it has one, else `per.cap`'s own `period`. */
interface PerFields {
  readonly cap?: unknown
  readonly limit?: number | undefined
  readonly per?: PerResource | undefined
}

export const featureSchema = schema(() =>
  z
    .object({
      /** `false` switches the feature off explicitly (the same as leaving it out). */
      enabled: z.optional(z.boolean()),
      /** The add-on that grants this feature; the feature lapses when the add-on is not in `ent.addons`. */
      addon: z.optional(name),
      /** A numeric limit (seats, projects…); the app passes what it has in use and what it asks for. */
      limit: z.optional(count),
      cap: z.optional(usageCapSchema),
      /** Overrides the license term for this feature, field by field. */
      term: z.optional(termSchema),
      /** Replaces the token-wide region policy for this feature. */
      regions: z.optional(regionPolicySchema),
      /** The user needs at least one of these roles. Replaces the token-wide `roles`. */
      roles: z.optional(names),
      upgrade: z.optional(upgradeHintSchema),
      /** Allowed past `limit` (the numeric limit): the excess is overage. */
      soft: z.optional(z.literal(true)),
      /** With `soft`: nothing past this is ever allowed. */
      ceiling: z.optional(count),
      thresholds: z.optional(thresholds),
      /** Granted per resource of a kind: each its own limit and counter (format version 2). */
      per: z.optional(perResourceSchema),
      /** Needs a lease of this pool (`ent.pools`), instead of the license-wide `ent.pool` (format version 2). */
      pool: z.optional(name),
    })
    .check(
      ...softLimitRules((feature: SoftLimitFields & { limit?: number | undefined }) => feature.limit),
      z.refine((feature: PerFields) => feature.per === undefined || feature.limit === undefined, {
        message: 'a per-resource feature has its numeric limit in per.limit',
        path: ['limit'],
      }),
      z.refine(
        (feature: PerFields) =>
          feature.per?.cap === undefined ||
          (feature.cap === undefined) === (feature.per.cap.period !== undefined),
        {
          message:
            "per.cap has a period of its own exactly when the feature has no cap (else it counts in the cap's window)",
          path: ['per', 'cap', 'period'],
        },
      ),
    ),
)

export const planSchema = schema(() =>
  z.object({
    id: name,
    name: z.optional(z.string().check(z.maxLength(256))),
    /** Higher is more: lets an app compare plans without knowing their names. */
    tier: z.optional(count),
  }),
)

/** The `ent` claim: everything the customer bought. */
export const entitlementClaimSchema = schema(() =>
  z
    .object({
      /**
       * Format version. Bumped when a restriction is added that older SDKs would not enforce: `2` adds per-resource
       * grants (`per`), floating-license pools (`pools`, `pool`) and credits (`credits`). A token that needs nothing
       * of 2 stays `1`, so older SDKs keep reading it.
       */
      v: z.literal(FORMAT_VERSIONS),
      plan: planSchema,
      addons: z.optional(names),
      /** Feature name → grant; `true` is a plain feature flag. */
      features: z.record(name, z.union([z.literal(true), featureSchema])),
      term: z.optional(termSchema),
      devices: z.optional(devicePolicySchema),
      regions: z.optional(regionPolicySchema),
      /** Roles a user needs for every feature that does not name its own. */
      roles: z.optional(names),
      /** Default upgrade hint. */
      upgrade: z.optional(upgradeHintSchema),
      /** Hints for features *not* in this plan: which plan or add-on would unlock them. */
      upgrades: z.optional(z.record(name, upgradeHintSchema)),
      /** Floating-license pools by name (format version 2). */
      pools: z.optional(z.record(name, poolSchema)),
      /** The pool every feature needs a lease of, unless it names its own `pool`: a floating license. */
      pool: z.optional(name),
      /** Prepaid credit balances by credit type (format version 2). */
      credits: z.optional(z.record(name, creditBalanceSchema)),
    })
    .check(
      z.refine((ent) => ent.v === 2 || !needsVersion2(ent), {
        message: 'per-resource features (per), pools and credits need v: 2',
        path: ['v'],
      }),
      z.refine((ent) => unknownPool(ent) === undefined, {
        message: 'a pool named by ent.pool or a feature is not in ent.pools',
        path: ['pools'],
      }),
      z.refine((ent) => duplicateGrant(ent) === undefined, {
        message: 'a grant id appears twice in one credit type',
        path: ['credits'],
      }),
      z.refine((ent) => costedTwice(ent) === undefined, {
        message: 'a feature or metric costs credits of more than one type',
        path: ['credits'],
      }),
      z.refine((ent) => typeNamedLikeFeature(ent) === undefined, {
        message: 'a credit type has the name of a feature',
        path: ['credits'],
      }),
    ),
)

/**
 * The whole payload of an entitlement token, as a zod (mini) schema: what a license server should validate before
 * signing, and what the verifier validates after.
 *
 * @example
 * ```ts
 * const result = entitlementTokenClaimsSchema.safeParse(claims)
 * if (!result.success) throw new Error(`not an entitlement: ${result.error.issues.length} issues`)
 * ```
 */
export const entitlementTokenClaimsSchema = schema(() =>
  z.object({
    iss: z.string().check(z.minLength(1)),
    sub: name,
    aud: z.union([
      z.string().check(z.minLength(1)),
      z.array(z.string().check(z.minLength(1))).check(z.minLength(1)),
    ]),
    iat: numericDate,
    nbf: z.optional(numericDate),
    exp: numericDate,
    jti: z.string().check(z.minLength(1), z.maxLength(MAX_NAME)),
    ent: entitlementClaimSchema,
  }),
)

/** Where to send a customer who hits a wall: a plan, an add-on, a URL (http or https). */
export type UpgradeHint = z.output<typeof upgradeHintSchema>
/** Time bounds of the license or of one feature, in seconds since the epoch. */
export type Term = z.output<typeof termSchema>
/** Allowed and denied regions (ISO 3166-1 alpha-2 or ISO 3166-2). */
export type RegionPolicy = z.output<typeof regionPolicySchema>
/** Device binding: at most `max` active devices, and/or these fingerprints only. */
export type DevicePolicy = z.output<typeof devicePolicySchema>
/** The window a metered cap counts over; `total` never resets. */
export type UsagePeriod = z.output<typeof usagePeriodSchema>
/** A metered cap as signed: `limit` units per `period`, `used` at signing, the window ending at `resetsAt`. */
export type UsageCap = z.output<typeof usageCapSchema>
/** A feature granted per resource of a kind (format version 2). */
export type PerResource = z.output<typeof perResourceSchema>
/** One resource's own grant within a per-resource feature. */
export type ResourceGrant = z.output<typeof resourceGrantSchema>
/** A floating-license pool as signed (format version 2). */
export type Pool = z.output<typeof poolSchema>
/** One credit type's balance snapshot as signed (format version 2). */
export type CreditBalance = z.output<typeof creditBalanceSchema>
/** One credit grant as signed. */
export type CreditGrant = z.output<typeof creditGrantSchema>
/** What a feature or metric costs in credits, as signed. */
export type CreditCost = z.output<typeof creditCostSchema>
/** One feature's grant as signed, with its own overrides. */
export type FeatureClaim = z.output<typeof featureSchema>
/** The customer's plan: an id, a display name, a tier to compare plans by. */
export type Plan = z.output<typeof planSchema>
/** The `ent` claim: everything the customer bought. */
export type EntitlementClaim = z.output<typeof entitlementClaimSchema>
/** The validated payload of an entitlement token. */
export type EntitlementTokenClaims = z.output<typeof entitlementTokenClaimsSchema>
