import type { CheckContext } from '../client/index.js'
import type { EntitlementChange } from '../core/changes.js'
import type { Decision } from '../core/decision.js'

/*
 * The mapping between OpenFeature and entitlements, shared by the server and web providers. Values are the
 * OpenFeature specification's strings; each provider types them with its SDK's enums.
 */

/** Options of both providers. */
export interface EntitlementsProviderOptions {
  /** What a number flag answers: what is left (`remaining`, default) or the `limit` itself. */
  number?: 'remaining' | 'limit'
}

/** The OpenFeature resolution details, with its enums as plain strings. */
export interface Resolution<T> {
  value: T
  reason: string
  variant?: string
  errorCode?: string
  errorMessage?: string
  flagMetadata?: Record<string, string | number | boolean>
}

type FlagType = 'boolean' | 'number' | 'string' | 'object'

/**
 * Evaluation context → check context: `targetingKey` is the customer; `roles`, `region`, `device`, `resource`,
 * `holder` (whose floating seat), `amount`, `usage` and `activeDevices` pass through when they have the right type,
 * and anything else is ignored.
 */
export function checkContextOf(context: Record<string, unknown> | undefined): CheckContext {
  const check: CheckContext = {}
  if (context === undefined) return check
  if (typeof context.targetingKey === 'string' && context.targetingKey.length > 0)
    check.subject = context.targetingKey
  if (Array.isArray(context.roles) && context.roles.every((role) => typeof role === 'string'))
    check.roles = context.roles as string[]
  if (typeof context.region === 'string') check.region = context.region
  if (typeof context.device === 'string') check.device = context.device
  if (typeof context.resource === 'string') check.resource = context.resource
  if (typeof context.holder === 'string') check.holder = context.holder
  for (const key of ['amount', 'usage', 'activeDevices'] as const)
    if (typeof context[key] === 'number') check[key] = context[key] as number
  return check
}

function metadata(decision: Decision): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {
    reason: decision.reason,
    allowed: decision.allowed,
  }
  for (const key of ['plan', 'subject', 'source'] as const)
    if (decision[key] !== undefined) out[key] = decision[key]!
  for (const key of ['limit', 'used', 'remaining', 'overage', 'resetsAt', 'expiresAt', 'age'] as const)
    if (decision[key] !== undefined) out[key] = decision[key]!
  // A per-resource decision: the resource asked about, and which level denied.
  if (decision.resource !== undefined) out.resource = decision.resource.id
  if (decision.resource?.deniedBy !== undefined) out.deniedBy = decision.resource.deniedBy
  if (decision.upgrade?.plan) out.upgradePlan = decision.upgrade.plan
  if (decision.upgrade?.url) out.upgradeUrl = decision.upgrade.url
  return out
}

const failed = <T>(value: T, errorCode: string, errorMessage: string): Resolution<T> => ({
  value,
  reason: 'ERROR',
  errorCode,
  errorMessage,
})

/** The decision as JSON: fields that do not apply are left out. */
function toJson(decision: Decision): Record<string, unknown> {
  return JSON.parse(JSON.stringify(decision)) as Record<string, unknown>
}

/**
 * One decision as an OpenFeature resolution of the given type. The decision's reason is the variant; errors (no
 * token, not loaded yet, a number asked of a plain flag) answer the default value with an error code.
 */
export function resolve<T>(
  decision: Decision,
  type: FlagType,
  defaultValue: T,
  options: EntitlementsProviderOptions,
): Resolution<T> {
  switch (decision.reason) {
    case 'not_loaded':
      return failed(defaultValue, 'PROVIDER_NOT_READY', 'the customer is being loaded')
    case 'unavailable':
      return failed(defaultValue, 'GENERAL', 'no usable entitlement token (the failure policy is closed)')
    case 'token_invalid':
      return failed(defaultValue, 'GENERAL', `the entitlement token is invalid (${decision.error})`)
    case 'invalid_request':
      return failed(
        defaultValue,
        'INVALID_CONTEXT',
        'amount and usage must be finite numbers of zero or more',
      )
    default:
  }
  // A stored token its source has not confirmed since a restart is as possibly out of date as a stale one.
  const reason =
    decision.source === 'stale' || decision.source === 'stored'
      ? 'STALE'
      : decision.source === 'fallback'
        ? 'DEFAULT'
        : 'TARGETING_MATCH'
  const details = { reason, variant: decision.reason, flagMetadata: metadata(decision) }
  switch (type) {
    case 'boolean':
      return { value: decision.allowed as T, ...details }
    case 'string':
      return { value: decision.reason as T, ...details }
    case 'object':
      return { value: toJson(decision) as T, ...details }
    case 'number': {
      const value = options.number === 'limit' ? decision.limit : (decision.remaining ?? decision.limit)
      if (value !== undefined) return { value: value as T, ...details }
      // A feature not in the plan has none of it: zero. A plain flag has no number: a type mismatch.
      if (decision.reason === 'not_in_plan') return { value: 0 as T, ...details }
      return failed(
        defaultValue,
        'TYPE_MISMATCH',
        `${decision.feature} has no limit or cap: ask for a boolean`,
      )
    }
  }
}

/** The features an entitlement change touched, each once: `flagsChanged` of a configuration-changed event. */
export function flagsChangedOf(changes: readonly EntitlementChange[]): string[] {
  return [...new Set(changes.flatMap((change) => ('feature' in change ? [change.feature] : [])))]
}

/** The answer when a multi-tenant client is asked with no `targetingKey`: the default, and why. */
export function missingTargetingKey<T>(defaultValue: T, error: unknown): Resolution<T> {
  // In OpenFeature's words: its users set `targetingKey`, not the client's `subject`.
  const message = (error as Error).message
  return failed(
    defaultValue,
    'TARGETING_KEY_MISSING',
    message.includes('context.subject')
      ? 'the evaluation context needs a targetingKey: the customer to check (this provider serves many customers)'
      : message,
  )
}
