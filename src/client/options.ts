import type { EntitlementChange } from '../core/changes.js'
import type { DecisionsByFeature } from '../core/decide-all.js'
import type { Decision, DecisionContext, DecisionReason } from '../core/decision.js'
import type { Entitlements } from '../core/entitlements.js'
import type { EntitlementError } from '../core/errors.js'
import type { VerifyOptions } from '../core/verify.js'
import type { Platform } from '../platform/platform.js'
import type { EntitlementStorage } from '../platform/storage.js'
import type { LicenseServerOptions } from '../transport/license-server-client.js'
import type { BackoffOptions } from '../transport/retry.js'
import type { UsageCounterStore } from '../usage/counter-store.js'
import type { CloseResult, FlushResult, UsageLine, UsageOptions, UsageStats } from '../usage/types.js'
import type { CreditBalanceView, ReserveOptions, ReserveResult } from './credits/credit-types.js'
import type { LeaseOptions, LeaseResult } from './leases/lease-types.js'

export type {
  HeldLease,
  LeaseEvents,
  LeaseOptions,
  LeaseRefusal,
  LeaseRefusalReason,
  LeaseResult,
} from './leases/lease-types.js'

/**
 * What to answer when no answer can be had: no token was ever loaded and the source cannot be reached, or the
 * last one is past its stale grace while refreshes fail. `'closed'` denies (`unavailable`), `'open'` allows
 * (`fallback`), or a declared decision (`fallback`), as in "let them use 5 seats while we cannot tell". It never
 * covers a token proven bad (forged, expired, for another issuer or audience): that is an answer, and it denies.
 */
export type FailurePolicy = 'closed' | 'open' | { readonly allowed: boolean; readonly limit?: number }

/**
 * The metering plug-in (`metering` from `entitle`), as `createEntitlements` takes it: opaque, made by the package
 * alone.
 */
export interface Metering {
  readonly name: 'metering'
}

/** Options of {@link createEntitlements}. */
export interface EntitlementsClientOptions extends Omit<VerifyOptions, 'now'> {
  /** Multi-tenant: the license server to fetch each customer's token from (protocol v1, `docs/client.md`). */
  server?: LicenseServerOptions & {
    /** Listen to the server's event stream so changes arrive at once. Default `false`. */
    events?: boolean
    /**
     * With `events`: while no stream can be held (the server refused it, `429`, or it is down), ask
     * `GET v1/changes` this often instead, so changes still arrive. Default 30 000 ms.
     */
    pollIntervalMs?: number
    /** How often to fetch the revocation list; 0 turns it off. Default 300 000 ms. */
    revocationIntervalMs?: number
  }
  /** Single-tenant: this app's own token, or a function that returns it (read a file, ask a server…). */
  token?: string | (() => string | Promise<string>)
  /**
   * Single-tenant: the license server to fetch the revocation list from (`GET v1/revocations` below `url`), so an
   * app holding its own token still learns that it was revoked. A multi-tenant client uses `server`. An app with no
   * network imports a signed list instead: `importRevocations()`.
   */
  revocations?: LicenseServerOptions & {
    /** How often to fetch it. Default 300 000 ms. */
    intervalMs?: number
  }
  /** At most this many customers are kept in memory (least recently used go first). Default 10 000. */
  maxSubjects?: number
  /** Refresh when this fraction of a token's life has passed (with up to 10% jitter earlier). Default 0.8. */
  refreshAt?: number
  /** After a token's `exp`, keep answering from it (`source: 'stale'`) this long while refreshes fail. Default 3 600 000. */
  staleGraceMs?: number
  /** Backoff between failed refreshes. */
  backoff?: BackoffOptions
  /** Answer when no answer can be had (see {@link FailurePolicy}). Default `'closed'`. */
  failurePolicy?: FailurePolicy
  /** Per-feature failure policies, overriding `failurePolicy`. */
  featurePolicies?: Readonly<Record<string, FailurePolicy>>
  /**
   * Where last-known-good tokens, the keys that verified them, revocations, trusted time and unsent usage survive
   * restarts. Default: in memory, and tokens are not written to it (the cache holds them; a customer the cache
   * evicts is fetched again). A storage given here keeps each customer's last token until it is proven bad or the
   * server says the license is gone, whether or not the cache still holds it: that is what lets a restart during
   * an outage answer for every customer.
   */
  storage?: EntitlementStorage
  /** Clock, randomness, timers and fetch. Default: the running environment's. */
  platform?: Partial<Platform>
  /**
   * Where background work (renewals, the event stream, revocation polls, usage sends, the decision summary) runs.
   * `'timers'` (default): on timers, with the event stream held open, as a server process or a browser does.
   * `'requests'`: for runtimes whose timers and connections end with the request that started them (Cloudflare
   * Workers, Vercel Edge Functions): each check runs what has fallen due since, inside the request, handed to
   * `platform.waitUntil`; an event stream is held at most 25 s at a time and opened again by the next check, from
   * where it left off. See `docs/edge.md`.
   */
  background?: 'timers' | 'requests'
  /** How often `on('decision')` hears the aggregated decision counts. Default 60 000 ms. */
  decisionSummaryIntervalMs?: number
  /**
   * Usage metering: `record()`, `consume()`, `consumeSync()` and `reserve()`, with the usage meter, its journal and
   * the fleet's shared counts. Pass `metering` from `entitle`; a client made without it only checks (those methods
   * throw a `TypeError`), and an app that never imports it bundles none of its code. See `docs/metering.md`.
   */
  metering?: Metering
  /**
   * Where metered usage goes and how it is batched (with `metering`). With a `server`, usage goes there by default;
   * a single-tenant client needs `usage.url` to record. See `docs/metering.md`.
   */
  usage?: UsageOptions
  /**
   * Fleets (with `metering`): a usage counter shared by every instance (`createRedisUsageStore` from
   * `entitle/redis`), so that `consume()` holds a metered cap across all of them. See `docs/fleets.md`.
   */
  fleet?: {
    store: UsageCounterStore
    /**
     * When the store fails: `'closed'` (default) denies `consume()` with `unavailable`; `'local'` lets this instance
     * use its share (`1 / instances`) of what it last saw left, from a count no older than `viewMaxAgeMs`, and
     * adds what it consumed to the store once it answers again. The bound this gives is in `docs/fleets.md`.
     */
    onStoreError?: 'closed' | 'local'
    /** With `'local'`: how many instances share the store (an upper bound is fine). Default 1. */
    instances?: number
    /** With `'local'`: the oldest count from the store an instance may count from in an outage. Default 30 000 ms. */
    viewMaxAgeMs?: number
  }
}

/** What a usage record says besides its amount. */
export interface RecordContext {
  /** The customer (multi-tenant: required). */
  subject?: string
  /** Breakdowns to aggregate by (`{ region: 'eu' }`): records with the same dimensions share a line. */
  dimensions?: Record<string, string>
  /** Raw mode only: the record's own properties, sent with it (JSON, at most 4 KiB). */
  properties?: Record<string, unknown>
  /**
   * The resource the usage is for, `kind:id` (`repository:api`), for a feature granted per resource: counted for
   * the resource and the account, and sent on the usage line.
   */
  resource?: string
}

/** A `change` event: a customer's entitlements changed (an upgrade, a downgrade, a new token). A first load is not a change. */
export interface ChangeEvent {
  readonly subject: string
  readonly previous: Entitlements
  readonly current: Entitlements
  readonly changes: readonly EntitlementChange[]
}

/** An `error` event: something failed in the background; checks go on as the failure policy says. */
export interface ErrorEvent {
  readonly subject: string | undefined
  readonly during: 'load' | 'refresh' | 'revocations' | 'events' | 'storage' | 'usage' | 'fleet'
  readonly error: EntitlementError
}

/** Aggregated decision counts for one feature, since the client started. */
export interface FeatureDecisionCounts {
  allowed: number
  denied: number
  readonly reasons: Partial<Record<DecisionReason, number>>
}

/** A `decision` event: the aggregated counts, sent every `decisionSummaryIntervalMs` (not one event per check). */
export interface DecisionSummaryEvent {
  readonly at: number
  readonly features: Readonly<Record<string, FeatureDecisionCounts>>
}

/**
 * A `threshold` event: a metered cap's usage reached one of its `thresholds` (a percentage of its limit). Once per
 * customer, feature, window and threshold; in ascending order when one step crosses several; with a fleet store,
 * once for the whole fleet.
 */
export interface ThresholdEvent {
  readonly subject: string
  readonly feature: string
  /** The percentage of `limit` reached (`80`, `100`, `150`). */
  readonly threshold: number
  /** Usage in the window when it was reached. */
  readonly used: number
  readonly limit: number
  /** When the window ends (and the thresholds start again); `undefined` for a cap with no window. */
  readonly resetsAt: number | undefined
}

/**
 * A floating seat this client holds changed in a way checks see: acquired (`held`), no longer holding (`lost`),
 * back (`revived`), given back (`released`). Renewals are not told here (nothing a check answers changes); the
 * lease's own `on()` has them. The React store listens, so a component re-renders when its seat comes or goes.
 */
export interface LeaseChangeEvent {
  readonly subject: string
  readonly pool: string
  readonly holder: string
  readonly id: string
  readonly state: 'held' | 'lost' | 'revived' | 'released'
}

/** The events of a client and what their listeners receive. */
export interface ClientEvents {
  change: ChangeEvent
  error: ErrorEvent
  decision: DecisionSummaryEvent
  threshold: ThresholdEvent
  lease: LeaseChangeEvent
}

/** Counters of what the client has done. */
export interface ClientStats {
  readonly cached: number
  readonly hits: number
  readonly misses: number
  readonly fetches: number
  readonly notModified: number
  readonly refreshes: number
  readonly failures: number
  readonly revoked: number
  readonly decisions: Readonly<Record<string, FeatureDecisionCounts>>
  /** The usage meter's counters (all zero when the client has nowhere to send usage). */
  readonly usage: UsageStats
}

/** What the app asks about: the decision context plus the customer, in multi-tenant use. */
export type CheckContext = DecisionContext

/**
 * Every feature's decision for one customer at one moment: what `client.snapshot()` returns, and what a server
 * renders from and hands to the page (it is plain JSON).
 */
export interface EntitlementsSnapshot {
  /** The customer (multi-tenant), else the subject of the app's own token, if loaded. */
  readonly subject: string | undefined
  /**
   * `loaded`: a token is in memory and `decisions` holds each feature's answer. Otherwise `decisions` is empty and
   * this says why: `not_loaded` (a load is under way), `not_in_plan` (the server has no license for the customer),
   * `revoked`, `token_invalid` or `expired` (the token the source handed out was proven bad).
   */
  readonly status: 'loaded' | 'not_loaded' | 'not_in_plan' | 'revoked' | 'token_invalid' | 'expired'
  readonly plan: string | undefined
  /** When it was taken, epoch milliseconds. */
  readonly at: number
  readonly decisions: DecisionsByFeature
  /** Each credit type's balance (`client.balance()`), by type; empty when the customer holds no credits. */
  readonly credits: Readonly<Record<string, CreditBalanceView>>
}

export type {
  CreditBalanceView,
  CreditHold,
  GrantView,
  ReserveOptions,
  ReserveResult,
} from './credits/credit-types.js'

/** The long-lived entitlements client. */
export interface EntitlementsClient {
  /** Decides, loading the customer's token first if it is not in memory. Never rejects on a bad or missing token. */
  check(feature: string, context?: CheckContext): Promise<Decision>
  /** Decides from memory only: `not_loaded` (and a load started) when nothing is there yet. */
  checkSync(feature: string, context?: CheckContext): Decision
  /**
   * Every feature's decision for a customer at once (each feature the token grants or names an upgrade hint for),
   * from memory, as `checkSync` answers each (and counts each as a check). `context` (roles, region…) applies to
   * all. Not in memory yet: `status: 'not_loaded'`, no decisions, and a load started.
   */
  snapshot(subject?: string, context?: Omit<CheckContext, 'subject'>): EntitlementsSnapshot
  /** Loads a customer's entitlements (from storage or the source) unless in memory; resolves to them, if any. */
  load(subject?: string): Promise<Entitlements | undefined>
  /** Fetches a customer's token from the source now (conditionally) and resolves when done. */
  refresh(subject?: string): Promise<Entitlements | undefined>
  /** The entitlements in memory for a customer, if any. */
  entitlements(subject?: string): Entitlements | undefined
  /** Listens to `change`, `error` or `decision`; returns a function that stops listening. */
  on<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): () => void
  /** Counters of cache hits and misses, fetches, refreshes, failures, revocations and decisions per feature. */
  stats(): ClientStats
  /**
   * Records `amount` (default 1) of a metered feature used by the customer: synchronous, O(1), never blocks. The
   * next check of that feature's cap counts it at once; the meter sends it to the license server exactly once.
   * Throws `usage_invalid` (counting nothing) for a negative or non-finite amount or bad dimensions, and a
   * `TypeError` on a client made without `metering`.
   */
  record(metric: string, amount?: number, context?: RecordContext): void
  /**
   * Checks and, when allowed, uses `context.amount` (default 1) of a feature in one step: the usage is recorded
   * for the license server, and with a `fleet` store a metered cap is counted atomically across every instance.
   * Never rejects on a bad token or a failing store: the answer says why. Needs `metering` (else a `TypeError`).
   */
  consume(feature: string, context?: CheckContext): Promise<Decision>
  /**
   * `consume()` from memory, synchronously, for a client with no `fleet`: in one process the check and the use
   * need not wait for anything. `not_loaded` (and a load started) when the customer is not in memory yet, as
   * `checkSync`. Throws a `TypeError` with a `fleet`, whose store is only reached asynchronously, or without
   * `metering`.
   */
  consumeSync(feature: string, context?: CheckContext): Decision
  /**
   * Imports a signed revocation list (a JWS of type `revocation-list+jwt` from the license server's keys, as
   * `GET v1/revocations` serves with `Accept: application/revocation-list+jwt`): for an app with no network, from a
   * file. Its token ids are added to the ones already known and kept in storage. Resolves to how many ids it
   * holds; rejects with an `EntitlementError` when it does not verify.
   */
  importRevocations(signedList: string): Promise<number>
  /**
   * Sends all queued usage now and resolves when the server confirmed it, or when it could not and the rest is
   * persisted. `keepalive: true` (a page being hidden) persists first, then sends within the browser's keepalive
   * budget without waiting.
   */
  flush(options?: { keepalive?: boolean }): Promise<FlushResult>
  /** Usage lines the license server refused (400, 422, or line by line), kept for the app to inspect. */
  setAsideUsage(): readonly UsageLine[]
  /** Queues the set-aside usage again, with the same ids, once the cause is fixed; returns how many lines. */
  resendSetAsideUsage(): number
  /**
   * Holds a seat of a floating-license pool (`ent.pools`) for the customer, and keeps it: the lease renews itself
   * before it ends, and a check of the pool's features goes by it (`lease_required` without one). Resolves to the
   * held lease, or to why not (`pool_full` with how many hold it and when to retry, `not_in_plan`, `unavailable`,
   * `refused`). Offline, a borrow kept from before is held again. Throws a `TypeError` for bad options only.
   */
  lease(pool: string, options?: LeaseOptions): Promise<LeaseResult>
  /**
   * Sets credits aside for work whose cost is known only once it is done (an LLM call): checks `feature` (a
   * feature or metric that costs credits) for `options.amount` units (default 1) as `consume()` would, and holds
   * what they cost until the hold is committed with the units actually used, released, or its `ttlMs` is up. With
   * a `fleet` store the hold lives in the store, so every instance's reservations and consumes see it: the fleet
   * cannot spend a balance twice. Resolves to the hold, or to the decision that refused it. Throws a `TypeError`
   * for bad options, when the feature costs no credits, or without `metering`.
   */
  reserve(feature: string, options?: ReserveOptions): Promise<ReserveResult>
  /**
   * A customer's balance of one credit type, from memory: the token's snapshot less what this client spent and
   * holds since, per grant in the burn order, with the next expiry and the snapshot's age. `undefined` when the
   * customer holds no such credits, or is not in memory yet (a load is started, as `checkSync` does).
   */
  balance(type: string, options?: { subject?: string }): CreditBalanceView | undefined
  /**
   * Gives back every seat this client holds, borrows excepted (they are kept for the next run); `keepalive` for a
   * page being unloaded. `close()` does it too.
   */
  releaseLeases(options?: { keepalive?: boolean }): Promise<void>
  /**
   * Gives back held leases (not borrows), stops every timer and stream, sends queued usage until `deadlineMs`
   * (default 5 000) and persists the rest, saves trusted time, and resolves when every write is done. Never
   * rejects. Checks still answer from memory.
   */
  close(options?: { deadlineMs?: number }): Promise<CloseResult>
}
