import { usedInWindow } from '../../core/cap-usage.js'
import { decideCounting, deniedForError, isStrings } from '../../core/decide.js'
import type { Decision, DecisionSource } from '../../core/decision.js'
import type { Entitlements, Feature, FeaturePool } from '../../core/entitlements.js'
import { featureTerm } from '../../core/feature-term.js'
import type { Lease } from '../../core/lease.js'
import type { MemoryUsageStore } from '../../usage/counter-store.js'
import { resourceMetric } from '../../usage/local-usage.js'
import type { UsageMeter } from '../../usage/meter.js'
import type { ClientConfig } from '../config.js'
import type { Reservations } from '../consume/reservations.js'
import type { CreditBook } from '../credits/credit-book.js'
import type { CheckContext, FailurePolicy } from '../options.js'
import type { Revocations } from '../revocations.js'
import { type Entry, SINGLE_TENANT_KEY } from '../tokens/cache-entry.js'
import type { TokenCache } from '../tokens/token-cache.js'
import type { TrustedClock } from '../trusted-clock.js'
import { counterKeyOf, windowFor } from '../usage-window.js'
import type { DecisionStats } from './decision-stats.js'
import type { MemoTable } from './memo-table.js'

/** A decision with every field but the ones given left empty: for answers that did not come from `decide`. */
export function emptyDecision(
  feature: string,
  allowed: boolean,
  reason: Decision['reason'],
  subject: string | undefined,
  source: DecisionSource,
): Decision {
  return {
    allowed,
    feature,
    reason,
    subject,
    plan: undefined,
    limit: undefined,
    used: undefined,
    remaining: undefined,
    overage: undefined,
    resetsAt: undefined,
    expiresAt: undefined,
    upgrade: undefined,
    error: undefined,
    source,
    age: undefined,
    resource: undefined,
    credits: undefined,
  }
}

/** The failure policy's answer: only when no answer can be had (nothing loaded and the source out of reach). */
export function fallbackDecision(
  feature: string,
  policy: FailurePolicy,
  subject: string | undefined,
): Decision {
  const allowed = policy === 'open' || (typeof policy === 'object' && policy.allowed)
  const limit = typeof policy === 'object' ? policy.limit : undefined
  const decision = emptyDecision(
    feature,
    allowed,
    policy === 'closed' ? 'unavailable' : 'fallback',
    subject,
    'fallback',
  )
  return limit === undefined ? decision : { ...decision, limit, remaining: limit }
}

/**
 * A check that depends on nothing but the customer, the feature and (through the feature's role rule, passed or
 * failed) the roles: its answer can be reused for a while (the memo table holds one answer for each side of the
 * rule). The subject only counts as "the customer" when it is the cache key (multi-tenant); a single-tenant client
 * keys its one token by nothing, so a subject there is a condition to check each time (`subject_mismatch`).
 */
export function isPlain(context: CheckContext, key: string): boolean {
  return (
    // Only an object can be plain: a string, number, boolean or bigint in its place is an invalid request, worked
    // out each time and never memoized, so it can neither poison the plain answer nor be answered by it.
    typeof context === 'object' &&
    (key !== SINGLE_TENANT_KEY || context.subject === undefined) &&
    // Roles that are not an array of strings are an invalid request: decided each time, as above.
    (context.roles === undefined || isStrings(context.roles)) &&
    context.region === undefined &&
    context.device === undefined &&
    context.activeDevices === undefined &&
    context.amount === undefined &&
    context.usage === undefined &&
    context.resource === undefined &&
    context.lease === undefined &&
    context.holder === undefined
  )
}

/**
 * How long a plain answer stays right: at most a second (so `age` is right to the second), and never past the
 * next moment the answer could change (the token's exp, a term, trial or grace end, a cap's reset).
 */
function memoUntil(entitlements: Entitlements, name: string, now: number): number {
  let until = Math.min(now + 1000, entitlements.expiresAt)
  const feature = entitlements.features.get(name)
  if (feature !== undefined) {
    const term = featureTerm(entitlements, feature)
    const resetsAt = feature.cap === undefined ? undefined : entitlements.usage.get(name)?.resetsAt
    for (const moment of [term.trialEndsAt, term.expiresAt, term.graceEndsAt, resetsAt]) {
      if (moment !== undefined && moment > now && moment < until) until = moment
    }
  }
  if (entitlements.notBefore !== undefined && entitlements.notBefore > now)
    until = Math.min(until, entitlements.notBefore)
  return until
}

/** Usage recorded here that the token's snapshot does not count yet, and what a crashed run may have granted. */
function localUsage(
  sources: {
    readonly meter: UsageMeter | undefined
    readonly localCounters: MemoryUsageStore | undefined
    readonly reservations: Reservations | undefined
  },
  entry: Entry,
  key: string,
  feature: string,
  now: number,
  /** The feature, where the caller looked it up already. */
  known?: Feature,
): number {
  const { meter, localCounters, reservations } = sources
  // Looked up only when something could have counted it (a meter, consume() without one, a crashed run's
  // reservations), so a plain check pays nothing for metering.
  const unknown = reservations?.hasUnknown() === true
  if (meter === undefined && !unknown && (localCounters === undefined || localCounters.size === 0)) return 0
  const { entitlements } = entry
  if ((known ?? entitlements.features.get(feature))?.cap === undefined) return 0
  const snapshot = entitlements.usage.get(feature)
  const asOf = snapshot?.asOf ?? entitlements.issuedAt
  // The counter's key costs two encodings: made only when the local counters or a crashed run's units need it.
  const counted = meter === undefined && localCounters !== undefined
  if (!counted && !unknown) return meter!.unreported(key, feature, now, asOf)
  let units = meter === undefined ? 0 : meter.unreported(key, feature, now, asOf)
  const counterKey = counterKeyOf(entitlements.subject, feature, windowFor(entitlements, feature, now))
  if (counted) {
    const here = localCounters!.peek(counterKey)
    if (here !== undefined) units += Math.max(0, here - usedInWindow(snapshot, now))
  }
  return unknown ? units + reservations!.unknown(counterKey, now) : units
}

/**
 * Usage of one resource's cap counted in this process that the token's snapshot does not hold yet: what it
 * recorded or consumed for the resource (the meter's count, or the in-process counters without a meter).
 */
function resourceUsage(
  counted: { readonly meter: UsageMeter | undefined; readonly localCounters: MemoryUsageStore | undefined },
  entry: Entry,
  key: string,
  feature: string,
  found: Feature | undefined,
  resource: unknown,
  now: number,
): number {
  const { entitlements } = entry
  if (found?.per?.cap === undefined || typeof resource !== 'string') return 0
  const name = resourceMetric(feature, resource)
  if (counted.meter !== undefined)
    return counted.meter.unreported(
      key,
      name,
      now,
      entitlements.usage.get(feature)?.asOf ?? entitlements.issuedAt,
    )
  const window = windowFor(entitlements, feature, now)
  return counted.localCounters?.peek(counterKeyOf(entitlements.subject, name, window)) ?? 0
}

/** How the answerer finds the lease a check of a floating feature goes by. */
export interface LeaseFinder {
  find(subject: string, pool: string, holder: string | undefined): Lease | undefined
}

/**
 * The context of a check of a floating feature with the lease this client holds filled in, unless the app passed
 * one. A context that is not an object is left as it is: the decision refuses it whole.
 */
function withLease(
  context: CheckContext,
  subject: string,
  pool: FeaturePool,
  leases: LeaseFinder | undefined,
): CheckContext {
  if (typeof context !== 'object' || context === null || context.lease !== undefined) return context
  const holder = context.holder ?? (pool.holder === 'machine' ? context.device : undefined)
  const lease = leases?.find(subject, pool.name, typeof holder === 'string' ? holder : undefined)
  return lease === undefined ? context : { ...context, lease }
}

/** What the answerer reads: the client's parts a decision depends on. */
export interface AnswererParts {
  readonly config: ClientConfig
  readonly tokens: TokenCache
  readonly clock: TrustedClock
  readonly revocations: Revocations
  readonly stats: DecisionStats
  /** Memoized answers to plain checks. */
  readonly memos: MemoTable
  readonly meter: UsageMeter | undefined
  /** What consume() counted in this process when there is no meter (and no fleet). */
  readonly localCounters: MemoryUsageStore | undefined
  /** The reservations of metered caps: what a crashed run may have granted counts too. */
  readonly reservations: Reservations | undefined
  /** The leases this client holds: a check of a floating feature goes by them. */
  readonly leases: LeaseFinder | undefined
  /** What this client spent and holds of its customers' credits beyond their snapshots (with metering). */
  readonly credits: CreditBook | undefined
  /**
   * With `background: 'requests'`: runs the background work fallen due since the last check (timers the runtime
   * did not run, an event stream it cut), inside this request.
   */
  readonly runDue?: ((now: number) => void) | undefined
}

/** No token in memory: a verdict if one is known (an answer), else the failure policy (no answer). */
function withoutToken(
  { tokens, stats, config }: AnswererParts,
  key: string,
  feature: string,
  subject: string | undefined,
): Decision {
  const verdict = tokens.verdict(key)
  if (verdict === undefined) return stats.count(fallbackDecision(feature, config.policyFor(feature), subject))
  // The first answer from a verdict the source gave just now says so, as a token's first answer does.
  const source = verdict.fresh ? 'fresh' : 'cache'
  verdict.fresh = false
  if (verdict.error !== undefined)
    return stats.count({ ...deniedForError(feature, verdict.error, subject), source })
  return stats.count(emptyDecision(feature, false, verdict.reason, subject, source))
}

/** Turns what the client holds for a customer into a decision: the hot path of every check. */
export function createAnswerer(parts: AnswererParts) {
  const { config, tokens, clock, revocations, stats, memos, runDue } = parts
  const { platform, staleGraceMs } = config

  /**
   * The answer for `feature`. `consuming` (consume(), whose context may leave `amount` to mean 1) is never
   * memoized: it is about to change what the next answer counts. `counted` replaces what this process counted
   * beyond the token's snapshot with another count (a fleet's, after its store counted), and `creditsCounted` what
   * it spent and holds of the feature's credits.
   */
  function answer(
    entry: Entry | undefined,
    key: string,
    feature: string,
    context: CheckContext,
    consuming = false,
    counted?: number,
    resourceCounted?: number,
    creditsCounted?: number,
  ): Decision {
    const now = platform.now()
    // Request-driven (a Worker's timers end with the request that set them): a renewal, a poll, a reconnect whose
    // timer never fired starts here, in this request, through the platform's waitUntil.
    if (runDue !== undefined) runDue(now)
    const subject = key === SINGLE_TENANT_KEY ? context.subject : key
    // Every check moves trusted time. A clock set back denies the tokens it could revive: one held, or one stored
    // that this clock cannot use; a customer with no token at all answers as the failure policy says.
    const rolledBack = clock.rolledBack(now)
    if (entry === undefined) {
      if (rolledBack && tokens.judgedByClock(key))
        return stats.count(emptyDecision(feature, false, 'clock_rollback', subject, 'fallback'))
      return withoutToken(parts, key, feature, subject)
    }
    if (rolledBack) return stats.count(emptyDecision(feature, false, 'clock_rollback', subject, 'cache'))
    let source: DecisionSource = entry.origin
    if (source === 'fresh') entry.origin = 'cache'
    const expiresAt = entry.expiresAt
    if (
      source !== 'fresh' &&
      now < expiresAt &&
      (revocations.size === 0 || !revocations.has(entry.entitlements.tokenId))
    ) {
      // The hot path: a token in memory, valid, not revoked. A plain check reuses its answer.
      if (!consuming && isPlain(context, key)) {
        const memo = memos.get(entry, feature, now, context.roles)
        if (memo !== undefined) return memo
      }
    }
    const { entitlements } = entry
    const age = now - entry.confirmedAt
    if (revocations.size !== 0 && revocations.has(entitlements.tokenId)) {
      const decision = emptyDecision(feature, false, 'revoked', entitlements.subject, source)
      return stats.count({ ...decision, plan: entitlements.plan.id, age })
    }
    let at = now
    if (now >= expiresAt) {
      // Stale only for a token that was good when its source last vouched for it and whose refreshes fail since. A
      // token that nothing renews (a token string), or that its source handed out (or back) already expired, is
      // an answer: it expired.
      const goodWhenReceived = tokens.renews && entry.confirmedAt < expiresAt
      if (!goodWhenReceived) {
        const decision = emptyDecision(feature, false, 'expired', entitlements.subject, source)
        return stats.count({
          ...decision,
          plan: entitlements.plan.id,
          expiresAt,
          error: 'token_expired',
          age,
        })
      }
      if (now >= expiresAt + staleGraceMs) {
        // Past the grace and its source has not vouched for it since it expired: no answer can be had.
        tokens.forget(key)
        return stats.count(fallbackDecision(feature, config.policyFor(feature), subject))
      }
      // Stale: decide as of the last moment the token was valid, and say so.
      at = expiresAt - 1
      source = 'stale'
    }
    // Looked up here only where something below needs it: a pool, or a resource's count (then shared with the
    // account's count, one lookup for both).
    const found =
      entitlements.pools.size === 0 && (resourceCounted !== undefined || context.resource === undefined)
        ? undefined
        : entitlements.features.get(feature)
    // A floating feature's answer depends on the lease held, which changes by itself: never memoized. Nor is a
    // costed one's: what any other feature of its credit type spends changes it.
    const pool = entitlements.pools.size === 0 ? undefined : found?.pool
    const cost = entitlements.costs.size === 0 ? undefined : entitlements.costs.get(feature)
    const plain =
      pool === undefined &&
      cost === undefined &&
      !consuming &&
      source !== 'fresh' &&
      source !== 'stale' &&
      isPlain(context, key)
    const decision = decideCounting(
      entitlements,
      feature,
      pool === undefined ? context : withLease(context, entitlements.subject, pool, parts.leases),
      at,
      counted ?? localUsage(parts, entry, key, feature, now, found),
      resourceCounted ??
        (context.resource === undefined
          ? 0
          : resourceUsage(parts, entry, key, feature, found, context.resource, now)),
      cost === undefined
        ? 0
        : (creditsCounted ??
            parts.credits?.counted(key, entitlements, entitlements.credits.get(cost.type)!, now) ??
            0),
    ) as {
      -readonly [K in keyof Decision]: Decision[K]
    }
    decision.source = source
    decision.age = age
    if (plain && memos.wants(entry, feature, now)) {
      const until = memoUntil(entitlements, feature, now)
      memos.set(entry, feature, Object.freeze(decision), now, until, context.roles)
    }
    return stats.count(decision)
  }

  /** Adds the hits of memoized answers (counted lazily, on the hot path) to the counts. */
  const fold = () => memos.fold()

  /** Forgets a memoized answer that no longer counts everything used (after record() or consume()). */
  function invalidate(entry: Entry | undefined, feature: string): void {
    if (entry !== undefined) memos.invalidate(entry, feature)
  }

  /** A metered cap's usage in its current window as checks count it: the token's snapshot and what is local. */
  function usedNow(entry: Entry, key: string, feature: string): number {
    const { entitlements } = entry
    if (entitlements.features.get(feature)?.cap === undefined) return 0
    const now = platform.now()
    return usedInWindow(entitlements.usage.get(feature), now) + localUsage(parts, entry, key, feature, now)
  }

  return { answer, invalidate, fold, usedNow }
}

export type Answerer = ReturnType<typeof createAnswerer>
