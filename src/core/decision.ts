import type { UpgradeHint } from './claims.js'
import type { EntitlementErrorCode } from './errors.js'
import type { Lease } from './lease.js'

/**
 * Why a decision came out as it did. Allowed decisions: `granted`, `trial`, `grace_period`, `overage`, `overdraft`. Every other reason
 * denies. Documented, with what a product should do for each, in `docs/decisions.md`.
 */
export type DecisionReason =
  /** Allowed: the feature is in the plan and every condition holds. */
  | 'granted'
  /** Allowed, in a trial that ends at `expiresAt`. */
  | 'trial'
  /** Allowed, although the term has ended: the grace period ends at `expiresAt`. */
  | 'grace_period'
  /** The feature is not in the customer's plan (or its add-on lapsed, or the name is unknown). */
  | 'not_in_plan'
  /** The feature is granted per resource, and the check named none, or one of another kind. */
  | 'resource_required'
  /** A numeric limit (seats, projects…) would be exceeded by the amount asked for. */
  | 'limit_exceeded'
  /** A metered cap for the current period would be exceeded; it resets at `resetsAt`. */
  | 'usage_cap_reached'
  /**
   * Allowed past a soft limit or soft cap: `overage` units past `limit` (this request's amount included), billed
   * by the license server as overage.
   */
  | 'overage'
  /** A soft limit or soft cap would pass its ceiling: denied whole, nothing counted. */
  | 'ceiling_reached'
  /**
   * Allowed, paid for in credits the customer does not have: the balance goes `credits.overdraft` below zero,
   * within the overdraft the plan allows (billed by the license server).
   */
  | 'overdraft'
  /** The feature costs credits, and the balance (with any overdraft the plan allows) does not cover this request. */
  | 'credits_exhausted'
  /**
   * The feature costs credits, and the balance snapshot is older than its plan lets this app spend from alone:
   * past `credits.offline`, allowed again once the license server is reached (a fresh token).
   */
  | 'credits_offline'
  /** The license term (or the feature's) ended, and any grace period with it. */
  | 'expired'
  /** The trial ended without a purchase. */
  | 'trial_ended'
  /** This device is not one the license is bound to, or too many devices are active. */
  | 'device_not_allowed'
  /** The region is denied, not in the allow list, or unknown while a region policy applies. */
  | 'region_blocked'
  /** The user has none of the roles the feature requires. */
  | 'role_missing'
  /**
   * The feature floats (a pool of seats): no valid lease of its pool is held, or the one held ended (past its
   * grace). Acquire one (`client.lease()`), or wait for a seat.
   */
  | 'lease_required'
  /** The token belongs to another customer than the one asked about. */
  | 'subject_mismatch'
  /** The check itself was malformed: an amount or usage that is not a finite number of zero or more. */
  | 'invalid_request'
  /** The token could not be verified; `error` holds the {@link EntitlementErrorCode}. */
  | 'token_invalid'
  /** Client: the license server revoked the token, or answered that the license ended (`410`). */
  | 'revoked'
  /** Client: the clock is behind the last trusted time seen (set back to revive an expired license). */
  | 'clock_rollback'
  /** Client, `checkSync`: nothing is loaded for this customer yet (a load has been started). */
  | 'not_loaded'
  /** Client: no usable token (server unreachable, grace over) and the failure policy is to fail closed. */
  | 'unavailable'
  /** Client: no usable token, and the failure policy (fail open, or a declared fallback) answered. */
  | 'fallback'

/**
 * Where a client's decision came from. `fresh`: a token loaded from its source for this very check; `stored`: a
 * token read from storage after a restart that its source has not confirmed yet; `cache`: a token held in memory,
 * confirmed by its source; `stale`: a token past its `exp`, served inside the grace window while the server cannot
 * be reached; `fallback`: no answer could be had, the failure policy answered.
 */
export type DecisionSource = 'fresh' | 'stored' | 'cache' | 'stale' | 'fallback'

/**
 * An answer a product can act on. Every decision has the same shape; fields that do not apply are `undefined`.
 * Times are epoch milliseconds.
 */
export interface Decision {
  readonly allowed: boolean
  readonly feature: string
  readonly reason: DecisionReason
  /** The customer the decision is about, when known. */
  readonly subject: string | undefined
  /** The plan id, when a token was read. */
  readonly plan: string | undefined
  /** The numeric limit or the metered cap that applied. */
  readonly limit: number | undefined
  /** In use (limit) or consumed in the current window (cap), before this request. */
  readonly used: number | undefined
  /** `limit - used`, never below zero. */
  readonly remaining: number | undefined
  /** Past a soft limit: the units past `limit` once this request's amount is used (`overage` reason); else `undefined`. */
  readonly overage: number | undefined
  /** When the metered cap's window resets. */
  readonly resetsAt: number | undefined
  /** When access ends: the trial's end in a trial, the grace period's end in grace, else the term's end. */
  readonly expiresAt: number | undefined
  /** Where to send the customer, on denials an upgrade or renewal would lift. */
  readonly upgrade: UpgradeHint | undefined
  /** The verification error behind `token_invalid` (and behind `expired` when the token itself expired). */
  readonly error: EntitlementErrorCode | undefined
  /** Client decisions only: where the answer came from. `undefined` from `decide` and `checkEntitlement`. */
  readonly source: DecisionSource | undefined
  /** Client decisions only: milliseconds since the token behind the answer was last confirmed by its source. */
  readonly age: number | undefined
  /** A feature granted per resource, checked for one: each level's numbers, and which denied. */
  readonly resource: ResourceDecision | undefined
  /** A feature or metric that costs credits: the balance it is paid from, and what this request costs. */
  readonly credits: CreditDecision | undefined
}

/** The credit side of a decision for a feature or metric that costs credits. Times are epoch milliseconds. */
export interface CreditDecision {
  /** The credit type it is paid in. */
  readonly type: string
  /** What this request costs (its `amount` priced), in credits. */
  readonly cost: number
  /**
   * Credits spendable before this request: the snapshot's grants that are live now, less what this client spent
   * or holds since the snapshot. Below zero while in overdraft.
   */
  readonly available: number
  /** With `reason: 'overdraft'`: how far below zero the balance is once this request is paid. */
  readonly overdraft: number | undefined
  /** When the next live grant with credits left expires (its credits are gone at that moment), if any does. */
  readonly nextExpiry: number | undefined
  /** When the server's ledger was read for the snapshot the balance starts from. */
  readonly asOf: number
}

/** One level's numbers in a per-resource decision. */
export interface LevelNumbers {
  readonly limit: number
  /** Before this request. */
  readonly used: number
  /** `limit - used`, never below zero. */
  readonly remaining: number
}

/**
 * A per-resource feature's decision for one resource: the resource's own limit and the account's over all its
 * resources. `limit`, `used` and `remaining` of the decision are those of the level that binds (the one with less
 * remaining, or the one that denied).
 */
export interface ResourceDecision {
  /** The resource asked about, `kind:id`. */
  readonly id: string
  /** Which level denied: the resource's own limit, or the account's; `undefined` when allowed, or denied before. */
  readonly deniedBy: 'resource' | 'account' | undefined
  /** The resource's own limit or cap and its usage, when it has one. */
  readonly own: LevelNumbers | undefined
  /** The account's cap over every resource, when the feature has one. */
  readonly account: LevelNumbers | undefined
}

/** What the app knows about the request being checked. */
export interface DecisionContext {
  /** The customer the app is acting for; a token for another subject is denied with `subject_mismatch`. */
  subject?: string
  /** The roles of the user acting. */
  roles?: readonly string[]
  /** This device's fingerprint, in the form the license server binds (a hash, ideally). */
  device?: string
  /** How many devices are active now, when the app knows it. */
  activeDevices?: number
  /** ISO 3166-1 alpha-2 country or ISO 3166-2 subdivision of the user (`DE`, `US-CA`). */
  region?: string
  /** How much this action needs: seats to add, API calls to make. Default 1. */
  amount?: number
  /**
   * For a numeric limit: how much is in use now (seats taken). For a metered cap: units consumed in the current
   * window that the token's snapshot does not count yet. Default 0. For a per-resource feature, the resource's.
   */
  usage?: number
  /**
   * The resource the action is for, `kind:id` (`workspace:ws_9`, `repository:api`): required by a feature granted
   * per resource, ignored by others.
   */
  resource?: string
  /**
   * For a feature in a floating-license pool: the lease to check, from `verifier.verifyLease()`. A client fills it
   * in from the leases it holds (`client.lease()`); pass one only to `decide()` and `checkEntitlement()`.
   */
  lease?: Lease
  /**
   * For a feature in a floating-license pool: whose lease the check needs (a user's id, in a pool held per user).
   * Default: the lease this client holds for the pool (for a pool held per machine, the one of `device`).
   */
  holder?: string
}
