import type { Decision, DecisionContext, DecisionReason } from './decision.js'
import { decision, denied, upgradeFor } from './decision-builders.js'
import type { Entitlements, Feature, RegionRule } from './entitlements.js'
import type { EntitlementErrorCode } from './errors.js'
import { currentWindowEnd } from './period.js'
import { version2 } from './version-2-code.js'

const NO_CONTEXT: DecisionContext = Object.freeze({})

/** A denial for a check that could not reach a token at all (see `checkEntitlement`). */
export function deniedForError(feature: string, error: EntitlementErrorCode, subject?: string): Decision {
  const reason: DecisionReason = error === 'token_expired' ? 'expired' : 'token_invalid'
  const answer = denied(feature, reason, undefined, undefined, undefined, error)
  return subject === undefined ? answer : { ...answer, subject }
}

/**
 * `code` is `entry` or a subdivision of it (`US-CA` under `US`). The entries are a frozen array of the read model:
 * V8 (Node 20) neither inlines a `for…of` over one nor reads its elements inline, so the common case, a country code
 * listed as it is, is one `includes` (a builtin call); only a code with a subdivision walks the list.
 */
function regionMatches(code: string, entries: readonly string[]): boolean {
  if (entries.includes(code)) return true
  if (!code.includes('-')) return false
  for (const entry of entries) {
    if (code.length > entry.length && code.startsWith(entry) && code[entry.length] === '-') return true
  }
  return false
}

/**
 * The region in upper case, as the rules hold it. `toUpperCase` makes a new string in the runtime, a sixth of a
 * decision with a region: a code already in upper case (as they usually are) is taken as it is.
 */
function upperCased(region: string): string {
  for (let i = 0; i < region.length; i++) {
    const char = region.charCodeAt(i)
    if ((char >= 97 && char <= 122) || char > 127) return region.toUpperCase()
  }
  return region
}

function regionAllowed(rule: RegionRule, region: string | undefined): boolean {
  // With a policy and no region, nothing proves the user is outside a denied region: fail closed.
  if (region === undefined || region.length === 0) return false
  const code = upperCased(region)
  if (rule.deny !== undefined && regionMatches(code, rule.deny)) return false
  return rule.allow === undefined || regionMatches(code, rule.allow)
}

/** Whether `held` has one of the `required` roles. Plain loops: a memoized check with roles runs this each time. */
export function hasAnyRole(required: readonly string[], held: readonly string[] | undefined): boolean {
  if (held === undefined) return false
  for (let i = 0; i < required.length; i++) {
    const role = required[i]
    for (let j = 0; j < held.length; j++) if (held[j] === role) return true
  }
  return false
}

function isAmount(value: number | undefined): boolean {
  return value === undefined || (typeof value === 'number' && Number.isFinite(value) && value >= 0)
}

/** An array of strings: what roles must be. A loop, as a memoized check with roles runs it on every call. */
export function isStrings(value: unknown): boolean {
  if (!Array.isArray(value)) return false
  for (let i = 0; i < value.length; i++) if (typeof value[i] !== 'string') return false
  return true
}

/**
 * Whether every field the context carries has the type the documentation gives. A wrong type (roles as one
 * string, a region that is a number, `activeDevices: NaN`) is an invalid request: never a substring match, never
 * a pass, never a throw.
 */
function contextIsValid(context: DecisionContext): boolean {
  if (typeof context !== 'object' || context === null) return false
  const { subject, roles, region, device, activeDevices, resource } = context
  return (
    (subject === undefined || typeof subject === 'string') &&
    (resource === undefined || typeof resource === 'string') &&
    (roles === undefined || isStrings(roles)) &&
    (region === undefined || typeof region === 'string') &&
    (device === undefined || typeof device === 'string') &&
    (activeDevices === undefined ||
      (typeof activeDevices === 'number' && Number.isSafeInteger(activeDevices) && activeDevices >= 0))
  )
}

/**
 * The decision engine: a pure function of what was bought, what is asked, and the time. No I/O, no clock, no
 * throwing, whatever the context holds. Conditions are checked in a fixed, documented order and the first that
 * fails is the reason: context types → subject → token window (`exp`, `nbf`) → plan → request → term (trial,
 * expiry, grace) → device → region → role → lease → limit → usage cap → credits.
 *
 * @param now epoch milliseconds.
 * @example
 * ```ts
 * const entitlements = await verifier.verify(token)
 * const decision = decide(entitlements, 'seats', { usage: 9, amount: 1 }, Date.now())
 * if (!decision.allowed) showUpgrade(decision.upgrade)
 * ```
 */
export function decide(
  entitlements: Entitlements,
  name: string,
  context: DecisionContext = NO_CONTEXT,
  now: number,
): Decision {
  return decideCounting(entitlements, name, context, now, 0)
}

/**
 * {@link decide}, with `counted` units of usage on top of `context.usage`: what the client recorded in this process
 * that the token's snapshot does not hold yet (and `creditsCounted`, the credits it spent or holds since the
 * balance's snapshot). Internal: it spares the client a copy of the context per check.
 */
export function decideCounting(
  entitlements: Entitlements,
  name: string,
  context: DecisionContext,
  now: number,
  counted: number,
  resourceCounted = 0,
  creditsCounted = 0,
): Decision {
  const made = decideWithoutCredits(entitlements, name, context, now, counted, resourceCounted)
  if (entitlements.costs.size === 0) return made
  const cost = entitlements.costs.get(name)
  if (cost === undefined) return made
  const feature = entitlements.features.get(name)
  // A metric that costs credits and is no feature of the plan: its credits alone decide.
  const priced =
    made.reason === 'not_in_plan' && feature === undefined
      ? { ...made, allowed: true, reason: 'granted' as const, upgrade: undefined }
      : made
  if (!priced.allowed) return made
  if (!isAmount(context.amount)) return denied(name, 'invalid_request', entitlements)
  // Costs are format version 2's: its code is loaded for any token that has them.
  return version2().decideCredits(
    entitlements,
    name,
    feature,
    priced,
    cost,
    context.amount ?? 1,
    now,
    creditsCounted,
  )
}

function decideWithoutCredits(
  entitlements: Entitlements,
  name: string,
  context: DecisionContext,
  now: number,
  counted: number,
  resourceCounted: number,
): Decision {
  // `now` not a number (null, a string, NaN) compares false with every time: it would pass every window.
  if (typeof now !== 'number' || Number.isNaN(now)) return denied(name, 'invalid_request', entitlements)
  if (!contextIsValid(context)) return denied(name, 'invalid_request', entitlements)
  if (context.subject !== undefined && context.subject !== entitlements.subject) {
    return { ...denied(name, 'subject_mismatch', undefined), subject: context.subject }
  }
  // The verifier checked the token's window when it verified; a cached verification must not outlive it.
  if (now >= entitlements.expiresAt) {
    const at = entitlements.expiresAt
    return denied(name, 'expired', entitlements, at, undefined, 'token_expired')
  }
  if (entitlements.notBefore !== undefined && now < entitlements.notBefore) {
    const error = 'token_not_yet_valid'
    return denied(name, 'token_invalid', entitlements, undefined, undefined, error)
  }
  const feature = entitlements.features.get(name)
  if (
    feature === undefined ||
    (feature.addon !== undefined && !entitlements.addons.includes(feature.addon))
  ) {
    const hint = upgradeFor(entitlements, name, feature)
    return denied(name, 'not_in_plan', entitlements, undefined, hint)
  }
  const amount = context.amount ?? 1
  const usage = (context.usage ?? 0) + counted
  if (!isAmount(context.amount) || !isAmount(context.usage)) {
    return denied(name, 'invalid_request', entitlements)
  }

  // Term: a trial first, then the paid term and its grace period. Each end is the feature's own, else the token's
  // (read here end by end, not through featureTerm(), which makes an object).
  const own = feature.term
  const term = entitlements.term
  const trialEndsAt = own?.trialEndsAt ?? term.trialEndsAt
  const termEndsAt = own?.expiresAt ?? term.expiresAt
  const graceEndsAt = own?.graceEndsAt ?? term.graceEndsAt
  let allowedAs: DecisionReason = 'granted'
  let expiresAt = termEndsAt
  if (trialEndsAt !== undefined) {
    if (now >= trialEndsAt) {
      const hint = upgradeFor(entitlements, name, feature)
      return denied(name, 'trial_ended', entitlements, trialEndsAt, hint)
    }
    allowedAs = 'trial'
    expiresAt = trialEndsAt
  }
  if (termEndsAt !== undefined && now >= termEndsAt) {
    if (graceEndsAt === undefined || now >= graceEndsAt) {
      const hint = upgradeFor(entitlements, name, feature)
      return denied(name, 'expired', entitlements, graceEndsAt ?? termEndsAt, hint)
    }
    allowedAs = 'grace_period'
    expiresAt = graceEndsAt
  }

  const devices = entitlements.devices
  if (devices.fingerprints !== undefined) {
    if (context.device === undefined || !devices.fingerprints.includes(context.device)) {
      return denied(name, 'device_not_allowed', entitlements, expiresAt)
    }
  } else if (devices.max !== undefined && context.device !== undefined) {
    // A license limited to some devices, in a token bound to none: it cannot vouch for the device asking, or one
    // seat would run on every machine. A device gets a token that names it (an activation).
    return denied(name, 'device_not_allowed', entitlements, expiresAt)
  }
  if (
    devices.max !== undefined &&
    context.activeDevices !== undefined &&
    context.activeDevices > devices.max
  ) {
    const max = devices.max
    return decision(
      false,
      name,
      'device_not_allowed',
      entitlements,
      max,
      context.activeDevices,
      undefined,
      expiresAt,
    )
  }

  if (feature.regions !== undefined && !regionAllowed(feature.regions, context.region)) {
    return denied(name, 'region_blocked', entitlements, expiresAt)
  }
  if (feature.roles !== undefined && !hasAnyRole(feature.roles, context.roles)) {
    return denied(name, 'role_missing', entitlements, expiresAt)
  }
  if (feature.pool !== undefined) {
    // Read only for a floating feature: the check of every other feature pays nothing for leases.
    const { lease, holder } = context
    if (
      (lease !== undefined && typeof lease !== 'object') ||
      (holder !== undefined && typeof holder !== 'string')
    )
      return denied(name, 'invalid_request', entitlements)
    // Pools are format version 2's: its code is loaded for any token that has them.
    if (!version2().leaseAllows(feature.pool, entitlements, context, now))
      return denied(name, 'lease_required', entitlements, expiresAt)
  }

  if (feature.per !== undefined) {
    // Every argument by itself: this is a check's path, and an array or object to carry them would be made each time.
    const { per } = feature
    return version2().decideForResource(
      entitlements,
      name,
      feature,
      per,
      context,
      amount,
      now,
      allowedAs,
      expiresAt,
      usage,
      resourceCounted,
    )
  }
  return decideAmounts(entitlements, name, feature, usage, amount, now, allowedAs, expiresAt)
}

/**
 * The last step of a decision: the numeric limit, then the metered cap. Past a soft one: allowed as overage up to
 * its ceiling; past a hard one, or the ceiling: denied whole.
 */
function decideAmounts(
  entitlements: Entitlements,
  name: string,
  feature: Feature,
  usage: number,
  amount: number,
  now: number,
  allowedAs: DecisionReason,
  expiresAt: number | undefined,
): Decision {
  let overage: number | undefined
  if (feature.limit !== undefined && usage + amount > feature.limit) {
    if (!feature.soft || (feature.ceiling !== undefined && usage + amount > feature.ceiling)) {
      const hint = upgradeFor(entitlements, name, feature)
      const reason = feature.soft ? 'ceiling_reached' : 'limit_exceeded'
      return decision(false, name, reason, entitlements, feature.limit, usage, undefined, expiresAt, hint)
    }
    overage = usage + amount - feature.limit
  }

  const cap = feature.cap
  if (cap !== undefined) {
    const snapshot = entitlements.usage.get(name)
    let used = snapshot?.used ?? 0
    let resetsAt = snapshot?.resetsAt
    // The snapshot belongs to a window that has closed: the current window starts from zero.
    if (resetsAt !== undefined && now >= resetsAt) {
      used = 0
      resetsAt = currentWindowEnd(cap.period, resetsAt, now)
    }
    used += usage
    let capOverage: number | undefined
    if (used + amount > cap.limit) {
      if (!cap.soft || (cap.ceiling !== undefined && used + amount > cap.ceiling)) {
        const hint = upgradeFor(entitlements, name, feature)
        const reason = cap.soft ? 'ceiling_reached' : 'usage_cap_reached'
        return decision(false, name, reason, entitlements, cap.limit, used, resetsAt, expiresAt, hint)
      }
      capOverage = used + amount - cap.limit
    }
    const reason = capOverage === undefined ? allowedAs : 'overage'
    return decision(
      true,
      name,
      reason,
      entitlements,
      cap.limit,
      used,
      resetsAt,
      expiresAt,
      undefined,
      undefined,
      capOverage,
    )
  }
  if (feature.limit !== undefined) {
    const reason = overage === undefined ? allowedAs : 'overage'
    return decision(
      true,
      name,
      reason,
      entitlements,
      feature.limit,
      usage,
      undefined,
      expiresAt,
      undefined,
      undefined,
      overage,
    )
  }
  return decision(true, name, allowedAs, entitlements, undefined, undefined, undefined, expiresAt)
}
