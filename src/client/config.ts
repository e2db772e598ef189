import { DEFAULTS } from '../core/defaults.js'
import type { VerifyOptions } from '../core/verify.js'
import { unrefFetch } from '../platform/background-fetch.js'
import { defaultPlatform, type Platform } from '../platform/platform.js'
import { withRequestTimers } from '../platform/request-timers.js'
import { createMemoryStorage, type EntitlementStorage } from '../platform/storage.js'
import { MAX_TIMER_MS, withLongTimers } from '../platform/timers.js'
import type { Endpoint } from '../transport/requester.js'
import type { UsageCounterStore } from '../usage/counter-store.js'
import type { MeterSettings } from '../usage/meter.js'
import type { UsageOptions } from '../usage/types.js'
import type { EntitlementsClientOptions, FailurePolicy, Metering } from './options.js'

/** The meter's settings, every one filled in, and where usage goes. */
export interface UsageConfig extends MeterSettings {
  /** Where usage goes; `same` when it is the license server's own endpoint and credentials. */
  readonly endpoint: Endpoint & { readonly same: boolean }
}

/** A backoff with both bounds filled in. */
export interface Backoff {
  readonly initialMs: number
  readonly maxMs: number
}

/** Every option with its default, checked once: what the client's modules read, with no `??` of their own. */
export interface ClientConfig {
  readonly platform: Platform
  /** Where background work runs: on timers, or at the requests that find it due (see the `background` option). */
  readonly background: 'timers' | 'requests'
  /** With `background: 'requests'`: runs the timers past due at `now` that the runtime did not run. */
  readonly runOverdue: ((now: number) => void) | undefined
  readonly storage: EntitlementStorage
  /**
   * Whether tokens are written to `storage`: only when the app gave one. The default in-memory storage would hold a
   * second copy of every token the cache holds, bounded by nothing, to survive a restart it cannot survive.
   */
  readonly persistTokens: boolean
  /**
   * Multi-tenant: the license server tokens come from, whether to hear its event stream, and how often to poll for
   * changes while no stream can be held.
   */
  readonly server: (Endpoint & { readonly events: boolean; readonly pollIntervalMs: number }) | undefined
  /** Single-tenant: the app's own token, or the function that returns it. */
  readonly token: string | (() => string | Promise<string>) | undefined
  /** Where the revocation list comes from: the server, or a single-tenant client's `revocations`. */
  readonly revocationSource: Endpoint | undefined
  readonly revocationIntervalMs: number
  /** The metering plug-in, when the app passed it: without it, the client only checks. */
  readonly metering: Metering | undefined
  /** The meter's settings, when usage has somewhere to go. */
  readonly usage: UsageConfig | undefined
  readonly fleet:
    | {
        readonly store: UsageCounterStore
        readonly onStoreError: 'closed' | 'local'
        /** How many instances share the store: each may use its share of what it last saw left, in an outage. */
        readonly instances: number
        /** A count the store gave longer ago than this is too stale to count from in an outage. */
        readonly viewMaxAgeMs: number
      }
    | undefined
  readonly maxSubjects: number
  readonly refreshAt: number
  readonly staleGraceMs: number
  readonly toleranceMs: number
  readonly backoff: Backoff
  /** Own keys only: a feature named `constructor` or `__proto__` gets the client's policy, not a prototype's. */
  readonly policyFor: (feature: string) => FailurePolicy
  /** 0: no `decision` events. */
  readonly decisionSummaryIntervalMs: number
  readonly closeDeadlineMs: number
  readonly verify: Omit<VerifyOptions, 'now'>
}

/** What a valid value looks like, as the end of "… must be": `undefined` when the value is one. */
type Check = (value: unknown) => string | undefined

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null
const isNumber = (value: unknown, min: number, max = Number.MAX_VALUE): value is number =>
  typeof value === 'number' && value >= min && value <= max

// The validators: one per kind of option, each saying what it expects. Plain functions, so a bundle that never
// resolves options (an app that only verifies) drops them all.
const positiveInteger: Check = (v) =>
  Number.isInteger(v) && (v as number) > 0 ? undefined : 'a positive integer'
const fraction: Check = (v) => (isNumber(v, Number.MIN_VALUE) && v < 1 ? undefined : 'between 0 and 1')
/** Milliseconds, 0 included (0 turns the thing off where the docs say so). */
const duration: Check = (v) => (isNumber(v, 0) ? undefined : 'a number of ms ≥ 0')
/** Milliseconds a timer waits: above 0, and within what `setTimeout` holds. */
const timeout: Check = (v) =>
  isNumber(v, 1, MAX_TIMER_MS) ? undefined : 'a number of ms from 1 to 2147483647'
const oneOf =
  (...values: readonly unknown[]): Check =>
  (v) =>
    values.includes(v) ? undefined : values.map((value) => JSON.stringify(value)).join(' or ')
/** A backoff: what it leaves out, the default fills in (see `take`). */
const backoffBounds: Check = (v) =>
  isObject(v) && [v.initialMs, v.maxMs].every((ms) => ms === undefined || isNumber(ms, 1))
    ? undefined
    : '{ initialMs?, maxMs? }, each a number of ms ≥ 1'
const policy: Check = (v) =>
  v === 'closed' ||
  v === 'open' ||
  (isObject(v) && typeof v.allowed === 'boolean' && (v.limit === undefined || isNumber(v.limit, 0)))
    ? undefined
    : "'closed', 'open' or { allowed: boolean, limit?: number }"
const object: Check = (v) => (isObject(v) ? undefined : 'an object')
const headers: Check = (v) =>
  isObject(v) && Object.values(v).every((header) => typeof header === 'string')
    ? undefined
    : 'an object of header names to strings'
const text: Check = (v) => (typeof v === 'string' ? undefined : 'a string')
const url: Check = (v) => {
  try {
    if ((typeof v === 'string' || v instanceof URL) && new URL(v)) return undefined
  } catch {}
  return 'an absolute URL'
}

/**
 * The validators table: every option, by name, and what a valid value is. An option with no entry here is checked
 * where it is used (the verifier's own options, `storage`, `token`, `fleet.store`).
 */
const VALIDATORS: Readonly<Record<string, Check>> = {
  maxSubjects: positiveInteger,
  refreshAt: fraction,
  staleGraceMs: duration,
  failurePolicy: policy,
  decisionSummaryIntervalMs: duration,
  backoff: backoffBounds,
  clockToleranceSec: duration,
  url,
  apiKey: text,
  headers,
  timeoutMs: timeout,
  events: /*@__PURE__*/ oneOf(true, false),
  background: /*@__PURE__*/ oneOf('timers', 'requests'),
  revocationIntervalMs: duration,
  pollIntervalMs: timeout,
  intervalMs: duration,
  mode: /*@__PURE__*/ oneOf('aggregate', 'raw'),
  flushIntervalMs: timeout,
  maxBatchLines: positiveInteger,
  maxBatchBytes: positiveInteger,
  maxInFlight: positiveInteger,
  maxQueuedLines: positiveInteger,
  maxSetAsideLines: positiveInteger,
  persistIntervalMs: timeout,
  onStoreError: /*@__PURE__*/ oneOf('closed', 'local'),
  instances: positiveInteger,
  viewMaxAgeMs: duration,
  platform: object,
}

/**
 * One option object resolved against its defaults: each field the default when absent, else the given value once
 * its validator passes (a `TypeError` that names the option and what it must be otherwise). A backoff given in
 * part takes the rest from the default: `{ maxMs: 60_000 }` keeps the default `initialMs`.
 */
function section<T extends object>(prefix: string, given: unknown, defaults: T): T {
  if (given !== undefined && !isObject(given)) throw new TypeError(`${prefix.slice(0, -1)} must be an object`)
  const resolved: Record<string, unknown> = { ...(defaults as object) }
  for (const name in defaults) {
    const value = (given as Record<string, unknown> | undefined)?.[name]
    if (value === undefined) continue
    const problem = VALIDATORS[name]!(value)
    if (problem !== undefined) throw new TypeError(`${prefix}${name} must be ${problem}`)
    resolved[name] =
      name === 'backoff' ? { ...(defaults[name] as object), ...defined(value as object) } : value
  }
  return resolved as T
}

/** The fields of `value` that are not `undefined`. */
const defined = (value: object) =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined))

/** The parts every endpoint has: where, the credentials, the extra headers, and the section's other settings. */
function endpoint<T extends { timeoutMs: number }>(
  prefix: string,
  given: { url?: unknown },
  defaults: T,
): Endpoint & T {
  if (given.url === undefined) throw new TypeError(`${prefix}url is required`)
  return section(prefix, given, { url: '', apiKey: undefined, headers: undefined, ...defaults })
}

/** Where usage goes: the license server, unless `usage` names another place or other credentials. */
function usageConfig(given: UsageOptions | undefined, server: Endpoint | undefined): UsageConfig | undefined {
  const {
    timeoutMs,
    url: _u,
    apiKey: _k,
    headers: _h,
    ...tuning
  } = section('usage.', given, {
    ...DEFAULTS.usage,
    ...NO_ENDPOINT,
  })
  const own = given?.url !== undefined || given?.apiKey !== undefined || given?.headers !== undefined
  if (given?.url === undefined && server === undefined) return undefined
  const same = server !== undefined && !own && given?.timeoutMs === undefined
  const destination = {
    url: given?.url ?? server!.url,
    apiKey: given?.apiKey ?? server?.apiKey,
    headers: given?.headers ?? server?.headers,
    timeoutMs: given?.timeoutMs ?? server?.timeoutMs ?? timeoutMs,
  }
  return { ...tuning, endpoint: { ...destination, same } } as UsageConfig
}

const NO_ENDPOINT = { url: undefined, apiKey: undefined, headers: undefined }

/**
 * Which source tokens come from (exactly one of a server, multi-tenant, or a token, single-tenant), and metering's
 * options only with the metering plug-in.
 */
function checkSources(options: EntitlementsClientOptions): void {
  const { server, token, revocations, fleet, metering, usage } = options
  if ((server === undefined) === (token === undefined))
    throw new TypeError('give a server (multi-tenant) or a token (single-tenant), one of the two')
  if (server !== undefined && revocations !== undefined)
    throw new TypeError(
      'a multi-tenant client fetches revocations from its server: drop the revocations option',
    )
  if (token !== undefined && typeof token !== 'string' && typeof token !== 'function')
    throw new TypeError('token must be a string or a function that returns one')
  if (metering !== undefined && typeof (metering as { assemble?: unknown })?.assemble !== 'function')
    throw new TypeError("metering must be the metering plug-in: import { metering } from 'entitle'")
  if (metering === undefined && (usage !== undefined || fleet !== undefined))
    throw new TypeError(
      `${usage === undefined ? 'fleet' : 'usage'} is for metering: import { metering } from 'entitle' and pass it too`,
    )
  if (fleet !== undefined && typeof fleet?.store?.consume !== 'function')
    throw new TypeError('fleet.store must be a usage counter store, such as the Redis one of entitle/redis')
}

/** The failure policy of each feature: its own (own keys only), else the client's. */
function policies(
  options: EntitlementsClientOptions,
  fallback: FailurePolicy,
): (feature: string) => FailurePolicy {
  const perFeature = new Map<string, FailurePolicy>()
  const given = options.featurePolicies
  if (given !== undefined && !isObject(given))
    throw new TypeError('featurePolicies must be an object of feature names to policies')
  for (const feature in given) {
    if (!Object.hasOwn(given, feature)) continue
    const problem = policy(given[feature])
    if (problem !== undefined) throw new TypeError(`featurePolicies.${feature} must be ${problem}`)
    perFeature.set(feature, given[feature]!)
  }
  return (feature) => perFeature.get(feature) ?? fallback
}

/**
 * The runtime's platform with the app's parts over it. A `fetch` the app gives (a proxy, a test's fake) carries the
 * event stream too, unless it gives `fetchInBackground` as well.
 */
function platformOf(given: Partial<Platform> | undefined): Platform {
  const fetchInBackground =
    given?.fetchInBackground ?? (given?.fetch === undefined ? unrefFetch() : undefined)
  return { ...defaultPlatform(), ...given, ...(fetchInBackground ? { fetchInBackground } : {}) }
}

/** Checks the options (a bad one is a `TypeError` now, not a surprise later) and fills in every default, once. */
export function resolveOptions(options: EntitlementsClientOptions): ClientConfig {
  if (!isObject(options)) throw new TypeError('createEntitlements needs options')
  checkSources(options)
  const { server: s, token, revocations: r, metering, usage, fleet, storage, platform, ...verify } = options
  const { failurePolicy, clockToleranceSec, ...client } = section('', options, {
    ...DEFAULTS.client,
    platform: {},
  })
  const server = s && endpoint('server.', s, DEFAULTS.server)
  const revocations = r && endpoint('revocations.', r, DEFAULTS.revocations)
  const given = platformOf(platform as Partial<Platform> | undefined)
  // Request-driven: every timer also runs at the first check past its due time (a Worker's timers die with the
  // request that set them). Long timers step over it, so a year-long renewal is caught up the same way.
  const requestTimers = client.background === 'requests' ? withRequestTimers(given) : undefined
  return {
    ...client,
    platform: withLongTimers(requestTimers?.platform ?? given),
    runOverdue: requestTimers?.runOverdue,
    storage: storage ?? createMemoryStorage(),
    persistTokens: storage !== undefined,
    server,
    token,
    revocationSource: server ?? revocations,
    revocationIntervalMs:
      server?.revocationIntervalMs ?? revocations?.intervalMs ?? DEFAULTS.revocations.intervalMs,
    metering,
    usage: metering === undefined ? undefined : usageConfig(usage, server),
    fleet: fleet && { store: fleet.store, ...section('fleet.', fleet, DEFAULTS.fleet) },
    toleranceMs: clockToleranceSec * 1000,
    policyFor: policies(options, failurePolicy as FailurePolicy),
    closeDeadlineMs: DEFAULTS.close.deadlineMs,
    verify,
  }
}
