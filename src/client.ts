import { LRUCache } from 'lru-cache'
import { type BackoffOptions, backoffDelay } from './backoff.js'
import { diffEntitlements, type EntitlementChange } from './changes.js'
import { decide } from './decide.js'
import type { Decision, DecisionContext, DecisionReason, DecisionSource } from './decision.js'
import type { Entitlements } from './entitlements.js'
import { EntitlementError } from './errors.js'
import {
  createLicenseServerClient,
  type LicenseServerClient,
  type LicenseServerOptions,
} from './license-server.js'
import { currentWindowEnd } from './period.js'
import { defaultPlatform, type Platform } from './platform.js'
import { createEventStreamParser } from './sse.js'
import { createMemoryStorage, type EntitlementStorage } from './storage.js'
import {
  type CloseResult,
  createUsageMeter,
  type FlushResult,
  NEVER,
  NO_USAGE_STATS,
  type UsageLine,
  type UsageMeter,
  type UsageOptions,
  type UsageStats,
  validateRecordExtras,
} from './usage-meter.js'
import { createMemoryUsageStore, type UsageCounterStore } from './usage-store.js'
import { createEntitlementVerifier, type EntitlementVerifier, type VerifyOptions } from './verify.js'

/**
 * What to answer when there is no usable token (the server cannot be reached and any grace is over):
 * `'closed'` denies (`unavailable`), `'open'` allows (`fallback`), or a declared decision (`fallback`), as in
 * "let them use 5 seats while we cannot tell".
 */
export type FailurePolicy = 'closed' | 'open' | { readonly allowed: boolean; readonly limit?: number }

/** Options of {@link createEntitlements}. */
export interface EntitlementsClientOptions extends Omit<VerifyOptions, 'now'> {
  /** Multi-tenant: the license server to fetch each customer's token from (protocol v1, `docs/client.md`). */
  server?: LicenseServerOptions & {
    /** Listen to the server's event stream so changes arrive at once. Default `false`. */
    events?: boolean
    /** How often to fetch the revocation list; 0 turns it off. Default 300 000 ms. */
    revocationIntervalMs?: number
  }
  /** Single-tenant: this app's own token, or a function that returns it (read a file, ask a server…). */
  token?: string | (() => string | Promise<string>)
  /** At most this many customers are kept in memory (least recently used go first). Default 10 000. */
  maxSubjects?: number
  /** Refresh when this fraction of a token's life has passed (with up to 10% jitter earlier). Default 0.8. */
  refreshAt?: number
  /** After a token's `exp`, keep answering from it (`source: 'stale'`) this long while refreshes fail. Default 3 600 000. */
  staleGraceMs?: number
  /** Backoff between failed refreshes. */
  backoff?: BackoffOptions
  /** Answer when no usable token exists. Default `'closed'`. */
  failurePolicy?: FailurePolicy
  /** Per-feature failure policies, overriding `failurePolicy`. */
  featurePolicies?: Readonly<Record<string, FailurePolicy>>
  /** Where last-known-good tokens, revocations and trusted time survive restarts. Default: in memory. */
  storage?: EntitlementStorage
  /** Clock, randomness, timers and fetch. Default: the running environment's. */
  platform?: Partial<Platform>
  /** How often `on('decision')` hears the aggregated decision counts. Default 60 000 ms. */
  decisionSummaryIntervalMs?: number
  /**
   * Usage metering (`record()`): where it goes and how it is batched. With a `server`, usage goes there by default;
   * a single-tenant client needs `usage.url` to record. See `docs/metering.md`.
   */
  usage?: UsageOptions
  /**
   * Fleets: a usage counter shared by every instance (`createRedisUsageStore` from `entitle/redis`), so that
   * `consume()` holds a metered cap across all of them. See `docs/fleets.md`.
   */
  fleet?: {
    store: UsageCounterStore
    /**
     * When the store fails: `'closed'` (default) denies `consume()` with `unavailable`; `'local'` counts in this
     * instance from the last fleet count it saw (the overshoot bound is in `docs/fleets.md`) and adds what it
     * consumed to the store once it answers again.
     */
    onStoreError?: 'closed' | 'local'
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
}

/** A `change` event: a customer's entitlements changed (an upgrade, a downgrade, a new token). */
export interface ChangeEvent {
  readonly subject: string
  readonly previous: Entitlements | undefined
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

/** The events of a client and what their listeners receive. */
export interface ClientEvents {
  change: ChangeEvent
  error: ErrorEvent
  decision: DecisionSummaryEvent
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

/** The long-lived entitlements client. */
export interface EntitlementsClient {
  /** Decides, loading the customer's token first if it is not in memory. Never rejects on a bad or missing token. */
  check(feature: string, context?: CheckContext): Promise<Decision>
  /** Decides from memory only: `not_loaded` (and a load started) when nothing is there yet. */
  checkSync(feature: string, context?: CheckContext): Decision
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
   * Throws `usage_invalid` (counting nothing) for a negative or non-finite amount or bad dimensions.
   */
  record(metric: string, amount?: number, context?: RecordContext): void
  /**
   * Checks and, when allowed, uses `context.amount` (default 1) of a feature in one step: the usage is recorded
   * for the license server, and with a `fleet` store a metered cap is counted atomically across every instance.
   * Never rejects on a bad token or a failing store: the answer says why.
   */
  consume(feature: string, context?: CheckContext): Promise<Decision>
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
   * Stops every timer and stream, sends queued usage until `deadlineMs` (default 5 000) and persists the rest,
   * saves trusted time, and resolves when every write is done. Never rejects. Checks still answer from memory.
   */
  close(options?: { deadlineMs?: number }): Promise<CloseResult>
}

interface Entry {
  readonly subject: string
  readonly token: string
  readonly entitlements: Entitlements
  /** `entitlements.expiresAt`, kept here so a memoized answer touches one object less. */
  readonly expiresAt: number
  readonly etag: string | undefined
  /** When the source last confirmed this token (a fetch or a 304). */
  confirmedAt: number
  /** Loaded by the check that is waiting for it: that check reports `fresh`. */
  fresh: boolean
  failures: number
  timer: unknown
  /** Memoized answers to plain checks (context with a subject only), each valid until `until`. */
  memo: Map<string, Memo> | undefined
}

/** A reusable answer, and how often it was given since its count was last folded into the totals. */
interface Memo {
  readonly decision: Decision
  readonly until: number
  hits: number
}

interface Stored {
  token: string
  etag: string | undefined
  confirmedAt: number
}

/** Memoized answers kept per customer, at most. */
const MAX_MEMO = 256

/** The key of the app's own token in single-tenant use. */
const OWN = ''
const TOKEN_KEY = 'entitle:token:'
const TIME_KEY = 'entitle:trusted-time'
const REVOKED_KEY = 'entitle:revoked'
const HOUR = 3_600_000
const NO_RECORD_CONTEXT: RecordContext = Object.freeze({})

function fallbackDecision(feature: string, policy: FailurePolicy, subject: string | undefined): Decision {
  const allowed = policy === 'open' || (typeof policy === 'object' && policy.allowed)
  const limit = typeof policy === 'object' ? policy.limit : undefined
  return {
    allowed,
    feature,
    reason: policy === 'closed' ? 'unavailable' : 'fallback',
    subject,
    plan: undefined,
    limit,
    used: undefined,
    remaining: limit,
    resetsAt: undefined,
    expiresAt: undefined,
    upgrade: undefined,
    error: undefined,
    source: 'fallback',
    age: undefined,
  }
}

/** Calls the app's own token source; its failures (a missing license file) get their own code. */
async function readTokenSource(source: () => string | Promise<string>): Promise<string> {
  try {
    return await source()
  } catch (cause) {
    throw new EntitlementError('token_unavailable', 'the token() source failed', { cause })
  }
}

function validate(options: EntitlementsClientOptions): void {
  if (typeof options !== 'object' || options === null) throw new TypeError('createEntitlements needs options')
  if (options.server === undefined && options.token === undefined) {
    throw new TypeError('give a server (multi-tenant) or a token (single-tenant)')
  }
  if (options.server !== undefined && options.token !== undefined) {
    throw new TypeError('give a server or a token, not both')
  }
  const refreshAt = options.refreshAt ?? 0.8
  if (!(refreshAt > 0 && refreshAt < 1)) throw new TypeError('refreshAt must be between 0 and 1')
  if (
    options.maxSubjects !== undefined &&
    !(Number.isInteger(options.maxSubjects) && options.maxSubjects > 0)
  ) {
    throw new TypeError('maxSubjects must be a positive integer')
  }
  if (options.fleet !== undefined) {
    if (typeof options.fleet?.store?.consume !== 'function')
      throw new TypeError('fleet.store must be a usage counter store, such as the Redis one of entitle/redis')
    const policy = options.fleet.onStoreError
    if (policy !== undefined && policy !== 'closed' && policy !== 'local')
      throw new TypeError("fleet.onStoreError must be 'closed' or 'local'")
  }
  const usage = options.usage
  if (usage !== undefined) {
    if (typeof usage !== 'object' || usage === null) throw new TypeError('usage must be an object')
    if (usage.mode !== undefined && usage.mode !== 'aggregate' && usage.mode !== 'raw')
      throw new TypeError("usage.mode must be 'aggregate' or 'raw'")
    for (const [name, value] of [
      ['usage.maxBatchLines', usage.maxBatchLines],
      ['usage.maxBatchBytes', usage.maxBatchBytes],
      ['usage.maxInFlight', usage.maxInFlight],
      ['usage.maxQueuedLines', usage.maxQueuedLines],
      ['usage.maxSetAsideLines', usage.maxSetAsideLines],
    ] as const) {
      if (value !== undefined && !(Number.isInteger(value) && value > 0))
        throw new TypeError(`${name} must be a positive integer`)
    }
    for (const [name, value] of [
      ['usage.flushIntervalMs', usage.flushIntervalMs],
      ['usage.persistIntervalMs', usage.persistIntervalMs],
      ['usage.timeoutMs', usage.timeoutMs],
    ] as const) {
      if (value !== undefined && !(Number.isFinite(value) && value > 0))
        throw new TypeError(`${name} must be > 0`)
    }
  }
  for (const [name, value] of [
    ['staleGraceMs', options.staleGraceMs],
    ['decisionSummaryIntervalMs', options.decisionSummaryIntervalMs],
    ['server.revocationIntervalMs', options.server?.revocationIntervalMs],
  ] as const) {
    if (value !== undefined && !(Number.isFinite(value) && value >= 0))
      throw new TypeError(`${name} must be ≥ 0`)
  }
}

/**
 * Creates the long-lived client an app makes once: it keeps each customer's verified entitlements in memory,
 * answers checks from there, refreshes them before they expire, hears upgrades and revocations, and keeps working
 * from the last-known-good token when the license server cannot be reached.
 *
 * @example
 * ```ts
 * const entitlements = createEntitlements({
 *   server: { url: 'https://license.example.com', apiKey: process.env.LICENSE_API_KEY, events: true },
 *   keys: new URL('https://license.example.com/.well-known/jwks.json'),
 *   issuer: 'https://license.example.com',
 *   audience: 'my-app',
 * })
 * const decision = await entitlements.check('export', { subject: customerId, roles: user.roles })
 * ```
 */
export function createEntitlements(options: EntitlementsClientOptions): EntitlementsClient {
  validate(options)
  const platform: Platform = { ...defaultPlatform(), ...options.platform }
  const storage = options.storage ?? createMemoryStorage()
  const refreshAt = options.refreshAt ?? 0.8
  const staleGraceMs = options.staleGraceMs ?? 3_600_000
  const toleranceMs = (options.clockToleranceSec ?? 60) * 1000
  const backoff = { initialMs: options.backoff?.initialMs ?? 1000, maxMs: options.backoff?.maxMs ?? 300_000 }
  const failurePolicy = options.failurePolicy ?? 'closed'
  const featurePolicies = options.featurePolicies ?? {}
  const { server: serverOptions, token: tokenSource, usage: usageOptions, fleet, ...verifyOptions } = options
  const fleetPolicy = fleet?.onStoreError ?? 'closed'
  const verifier = createEntitlementVerifier({ ...verifyOptions, now: () => platform.now() })
  // Tokens past exp but inside the stale grace are verified with a tolerance that reaches that far; every other
  // check stays as strict. Made on first need: most clients never need it.
  let staleVerifier: EntitlementVerifier | undefined
  const server: LicenseServerClient | undefined =
    serverOptions && createLicenseServerClient(serverOptions, platform)

  const listeners: { [K in keyof ClientEvents]: Set<(event: ClientEvents[K]) => void> } = {
    change: new Set(),
    error: new Set(),
    decision: new Set(),
  }
  function emit<K extends keyof ClientEvents>(type: K, event: ClientEvents[K]): void {
    for (const listener of listeners[type]) {
      try {
        listener(event)
      } catch {
        // A listener's bug must not break checks or background refreshes.
      }
    }
  }
  /** Starts background work, hands it to the platform's `waitUntil`, and never lets it reject unobserved. */
  function background(work: Promise<unknown>): void {
    const settled = work.then(
      () => undefined,
      () => undefined,
    )
    platform.waitUntil?.(settled)
  }
  const report = (during: ErrorEvent['during'], subject: string | undefined, error: unknown) => {
    const wrapped =
      error instanceof EntitlementError
        ? error
        : new EntitlementError(
            during === 'storage' ? 'storage_failed' : 'server_unavailable',
            String(error),
            { cause: error },
          )
    emit('error', { subject, during, error: wrapped })
  }

  const counters = { hits: 0, misses: 0, fetches: 0, notModified: 0, refreshes: 0, failures: 0 }
  // Feature names may come from user input: past this many, counts go to '(other)' instead of growing forever.
  const MAX_COUNTED_FEATURES = 1000
  const decisions = new Map<string, FeatureDecisionCounts>()
  let closed = false

  // No TTL here: answer() enforces exp + stale grace itself, and `max` bounds memory, so a lookup reads no clock.
  const cache = new LRUCache<string, Entry>({
    max: options.maxSubjects ?? 10_000,
    dispose: (entry) => {
      platform.clearTimeout(entry.timer)
      foldMemos(entry)
    },
  })
  const loading = new Map<string, Promise<Entry | undefined>>()
  /** Customers the server says have no license: remembered for a minute, bounded like the cache. */
  const missing = new LRUCache<string, 'not_in_plan' | 'revoked'>({
    max: options.maxSubjects ?? 10_000,
    ttl: 60_000,
    perf: { now: () => platform.now() },
    // Read the injected clock on every lookup: lru-cache otherwise caches "now" behind a real timer.
    ttlResolution: 0,
  })
  let revoked = new Set<string>()
  let revokedEtag: string | undefined
  const writes = new Set<Promise<unknown>>()
  let trustedTime = 0
  let trustedTimeSaved = 0

  // --- storage -----------------------------------------------------------------------------------------------

  function storageFailed(message: string, cause?: unknown): void {
    report('storage', undefined, new EntitlementError('storage_failed', message, { cause }))
  }

  async function read(key: string): Promise<string | undefined> {
    try {
      return await storage.get(key)
    } catch (error) {
      storageFailed(`could not read ${key}`, error)
      return undefined
    }
  }
  /** The last write per key: writes to one key run in order, so an older value never lands after a newer one. */
  const lastWrite = new Map<string, Promise<unknown>>()
  function write(key: string, value: string | undefined): void {
    const failed = (error: unknown) => storageFailed(`could not write ${key}`, error)
    const run = () => (value === undefined ? storage.delete(key) : storage.set(key, value))
    const previous = lastWrite.get(key)
    let done: unknown
    try {
      done = previous === undefined ? run() : previous.then(run)
    } catch (error) {
      failed(error)
      return
    }
    if (!(done instanceof Promise)) return
    // Writes are kept track of: close() waits for them, so a graceful shutdown loses nothing.
    const tracked: Promise<unknown> = done.catch(failed).finally(() => {
      writes.delete(tracked)
      if (lastWrite.get(key) === tracked) lastWrite.delete(key)
    })
    writes.add(tracked)
    lastWrite.set(key, tracked)
    background(tracked)
  }
  function saveTrustedTime(): void {
    // Any change is saved, a lowering too: re-anchoring to the server's time must survive a restart.
    if (trustedTime !== trustedTimeSaved) {
      trustedTimeSaved = trustedTime
      write(TIME_KEY, String(trustedTime))
    }
  }

  // --- usage -------------------------------------------------------------------------------------------------

  // Usage goes to the server unless `usage` names another place or other credentials.
  const usageUrl = usageOptions?.url ?? serverOptions?.url
  const usageServer: LicenseServerClient | undefined =
    usageUrl === undefined
      ? undefined
      : server !== undefined &&
          usageOptions?.url === undefined &&
          usageOptions?.apiKey === undefined &&
          usageOptions?.headers === undefined &&
          usageOptions?.timeoutMs === undefined
        ? server
        : createLicenseServerClient(
            {
              url: usageUrl,
              apiKey: usageOptions?.apiKey ?? serverOptions?.apiKey,
              headers: usageOptions?.headers ?? serverOptions?.headers,
              timeoutMs: usageOptions?.timeoutMs ?? serverOptions?.timeoutMs,
            },
            platform,
          )
  const meter: UsageMeter | undefined =
    usageServer &&
    createUsageMeter(usageOptions ?? {}, {
      platform,
      send: (batchId, body, keepalive) => usageServer.sendUsage(batchId, body, keepalive),
      windowFor: (entry, metric, now) => windowFor(entry as Entry | undefined, metric, now),
      subjectOf: (key) => (key === OWN ? cache.peek(OWN)?.entitlements.subject : key),
      issuedAt: (key) => cache.peek(key)?.entitlements.issuedAt,
      read,
      write,
      report: (error) => report('usage', undefined, error),
      background,
    })

  /** The end of the usage window `metric` is in: the cap's window when the token has one, else the UTC hour. */
  function windowFor(entry: Entry | undefined, metric: string, now: number): number {
    const cap = entry?.entitlements.features.get(metric)?.cap
    if (cap === undefined) return Math.floor(now / HOUR) * HOUR + HOUR
    if (cap.resetsAt === undefined) return NEVER
    return currentWindowEnd(cap.period, cap.resetsAt, now) ?? NEVER
  }

  const ready = (async () => {
    const [time, list] = await Promise.all([read(TIME_KEY), read(REVOKED_KEY), meter?.restore()])
    const saved = Number(time)
    if (Number.isFinite(saved) && saved > trustedTime) trustedTime = trustedTimeSaved = saved
    try {
      const parsed =
        list === undefined ? undefined : (JSON.parse(list) as { revoked: string[]; etag?: string })
      if (parsed && Array.isArray(parsed.revoked)) {
        revoked = new Set(parsed.revoked)
        revokedEtag = parsed.etag
      }
    } catch {
      storageFailed('the stored revocation list is not JSON')
    }
  })()

  // --- tokens ------------------------------------------------------------------------------------------------

  async function verify(token: string): Promise<Entitlements> {
    try {
      return await verifier.verify(token)
    } catch (error) {
      if (!(error instanceof EntitlementError) || error.code !== 'token_expired' || staleGraceMs === 0)
        throw error
      staleVerifier ??= createEntitlementVerifier({
        ...verifyOptions,
        clockToleranceSec: (options.clockToleranceSec ?? 60) + staleGraceMs / 1000,
        now: () => platform.now(),
      })
      return staleVerifier.verify(token)
    }
  }

  function install(
    key: string,
    token: string,
    entitlements: Entitlements,
    etag: string | undefined,
    confirmedAt: number,
    fromSource: boolean,
  ): Entry {
    const previous = cache.get(key)?.entitlements
    const entry: Entry = {
      subject: key,
      token,
      entitlements,
      expiresAt: entitlements.expiresAt,
      etag,
      confirmedAt,
      fresh: true,
      failures: 0,
      timer: undefined,
      memo: undefined,
    }
    cache.set(key, entry)
    missing.delete(key)
    if (fromSource && server !== undefined) {
      // A token the license server just issued vouches for the time: it re-anchors trusted time, so a clock that
      // once ran fast recovers online. A token the app supplies (a license file) is no such evidence.
      trustedTime = Math.max(entitlements.issuedAt, Math.min(trustedTime, platform.now()))
    } else {
      trustedTime = Math.max(trustedTime, entitlements.issuedAt)
    }
    if (fromSource) write(`${TOKEN_KEY}${key}`, JSON.stringify({ token, etag, confirmedAt } satisfies Stored))
    if (previous === undefined || previous.tokenId !== entitlements.tokenId) {
      const changes = diffEntitlements(previous, entitlements)
      if (previous === undefined || changes.length > 0)
        emit('change', { subject: key, previous, current: entitlements, changes })
    }
    // A token restored from storage may be old: ask the source soon after start, not at 80% of its life.
    schedule(entry, fromSource ? undefined : 1000 + Math.floor(platform.random() * 4000))
    return entry
  }

  /** Milliseconds until a token is due for renewal: `refreshAt` of its life, up to 10% earlier (jitter). */
  function untilRenewal(entry: Entry): number {
    const { issuedAt, expiresAt } = entry.entitlements
    const life = expiresAt - issuedAt
    return issuedAt + life * refreshAt - platform.random() * life * 0.1 - platform.now()
  }

  function schedule(entry: Entry, delay?: number): void {
    platform.clearTimeout(entry.timer)
    if (closed || (server === undefined && typeof tokenSource !== 'function')) return
    const wait = delay ?? Math.max(1000, untilRenewal(entry))
    entry.timer = platform.setTimeout(() => background(fetchFromSource(entry.subject, 'refresh')), wait)
  }

  async function restore(key: string): Promise<Entry | undefined> {
    const raw = await read(`${TOKEN_KEY}${key}`)
    if (raw === undefined) return undefined
    try {
      const stored = JSON.parse(raw) as Stored
      const entitlements = await verify(stored.token)
      if (key !== OWN && entitlements.subject !== key) return undefined
      return install(key, stored.token, entitlements, stored.etag, stored.confirmedAt, false)
    } catch (error) {
      // A stored token that no longer verifies (expired beyond grace, keys rotated away) is simply forgotten.
      write(`${TOKEN_KEY}${key}`, undefined)
      if (!(error instanceof EntitlementError)) report('storage', key, error)
      return undefined
    }
  }

  async function fetchFromSource(key: string, during: 'load' | 'refresh'): Promise<Entry | undefined> {
    const current = cache.get(key)
    if (closed) return current
    if (during === 'refresh') counters.refreshes++
    try {
      if (server === undefined) {
        const token =
          typeof tokenSource === 'function' ? await readTokenSource(tokenSource) : (tokenSource as string)
        const entitlements = await verify(token)
        if (current?.token === token) {
          current.confirmedAt = platform.now()
          current.failures = 0
          schedule(current)
          return current
        }
        return install(key, token, entitlements, undefined, platform.now(), true)
      }
      counters.fetches++
      const response = await server.fetchToken(key, current?.etag)
      if (response.status === 'not_modified' && current) {
        counters.notModified++
        current.confirmedAt = platform.now()
        const wait = untilRenewal(current)
        if (wait > 1000) {
          current.failures = 0
          schedule(current, wait)
        } else {
          // The token is due for renewal, yet the server says it is current: ask again with backoff, not every
          // second (protocol v1 has servers re-issue past half-life; this keeps a server that does not polite).
          current.failures++
          schedule(current, Math.max(1000, backoffDelay(current.failures - 1, platform.random(), backoff)))
        }
        return current
      }
      if (response.status === 'not_found' || response.status === 'gone') {
        cache.delete(key)
        // A license that ended (410) answers `revoked`; a customer with none (404) answers `not_in_plan`.
        missing.set(key, response.status === 'gone' ? 'revoked' : 'not_in_plan')
        write(`${TOKEN_KEY}${key}`, undefined)
        return undefined
      }
      if (response.status !== 'ok')
        throw new EntitlementError('server_rejected', 'a 304 answered a request that sent no ETag')
      const entitlements = await verify(response.token)
      if (entitlements.subject !== key) {
        throw new EntitlementError(
          'claims_invalid',
          `the server sent a token for ${entitlements.subject}, not ${key}`,
        )
      }
      return install(key, response.token, entitlements, response.etag, platform.now(), true)
    } catch (error) {
      counters.failures++
      report(during, key === OWN ? undefined : key, error)
      const entry = cache.get(key)
      if (entry) {
        entry.failures++
        const retryAfter = (error as { retryAfterMs?: number }).retryAfterMs
        const wait = Math.max(
          retryAfter ?? 0,
          backoffDelay(entry.failures - 1, platform.random(), backoff),
          1000,
        )
        schedule(entry, wait)
      }
      return entry
    }
  }

  function load(key: string): Promise<Entry | undefined> {
    let pending = loading.get(key)
    if (pending === undefined) {
      pending = (async () => {
        await ready
        // A token given as a string is the truth: a stored one could be older (the app shipped a new license).
        const restored = typeof tokenSource === 'string' ? undefined : await restore(key)
        return cache.get(key) ?? restored ?? (await fetchFromSource(key, 'load'))
      })().finally(() => loading.delete(key))
      loading.set(key, pending)
    }
    return pending
  }

  // --- decisions ---------------------------------------------------------------------------------------------

  /** Adds the hits of an entry's memoized answers to the per-feature counts (they are counted lazily). */
  function foldMemos(entry: Entry): void {
    if (entry.memo === undefined) return
    for (const memo of entry.memo.values()) foldMemo(memo)
  }
  function foldMemo(memo: Memo): void {
    const hits = memo.hits
    memo.hits = 0
    for (let i = 0; i < hits; i++) count(memo.decision)
  }
  function foldAll(): void {
    for (const entry of cache.values()) foldMemos(entry)
  }

  function count(decision: Decision): Decision {
    let counts = decisions.get(decision.feature)
    if (counts === undefined) {
      const name = decisions.size < MAX_COUNTED_FEATURES ? decision.feature : '(other)'
      counts = decisions.get(name) ?? { allowed: 0, denied: 0, reasons: {} }
      decisions.set(name, counts)
    }
    if (decision.allowed) counts.allowed++
    else counts.denied++
    const reasons = counts.reasons as Record<string, number>
    reasons[decision.reason] = (reasons[decision.reason] ?? 0) + 1
    return decision
  }

  function policyFor(feature: string): FailurePolicy {
    return featurePolicies[feature] ?? failurePolicy
  }

  function answer(entry: Entry | undefined, key: string, feature: string, context: CheckContext): Decision {
    const now = platform.now()
    const subject = key === OWN ? context.subject : key
    if (now + toleranceMs < trustedTime) {
      return count({
        ...fallbackDecision(feature, 'closed', subject),
        reason: 'clock_rollback',
        source: entry ? 'cache' : 'fallback',
      })
    }
    if (now > trustedTime) trustedTime = now
    if (entry === undefined) {
      const gone = missing.get(key)
      if (gone !== undefined) {
        return count({ ...fallbackDecision(feature, 'closed', subject), reason: gone, source: 'cache' })
      }
      return count(fallbackDecision(feature, policyFor(feature), subject))
    }
    let source: DecisionSource = 'cache'
    if (entry.fresh) {
      source = 'fresh'
      entry.fresh = false
    }
    const expiresAt = entry.expiresAt
    if (
      source === 'cache' &&
      now < expiresAt &&
      (revoked.size === 0 || !revoked.has(entry.entitlements.tokenId))
    ) {
      // The hot path: a token in memory, valid, not revoked. A plain check reuses its answer.
      if (isPlain(context, key)) {
        const memo = entry.memo?.get(feature)
        if (memo !== undefined && now < memo.until) {
          memo.hits++
          return memo.decision
        }
      }
    }
    const { entitlements } = entry
    if (revoked.size !== 0 && revoked.has(entitlements.tokenId)) {
      const decision = {
        ...fallbackDecision(feature, 'closed', entitlements.subject),
        reason: 'revoked' as const,
        source,
      }
      return count({ ...decision, plan: entitlements.plan.id, age: now - entry.confirmedAt })
    }
    let at = now
    if (now >= expiresAt) {
      if (now >= expiresAt + staleGraceMs) {
        cache.delete(key)
        return count(fallbackDecision(feature, policyFor(feature), subject))
      }
      // Stale: decide as of the last moment the token was valid, and say so.
      at = expiresAt - 1
      source = 'stale'
    }
    const plain = source === 'cache' && isPlain(context, key)
    let asked = context
    // Usage recorded here that the token's snapshot does not count yet; looked up only when something could have
    // counted it (a meter, or consume() without one), so a plain check pays nothing for metering.
    const counting = meter !== undefined || (localStore !== undefined && localStore.size > 0)
    const cap = counting ? entitlements.features.get(feature)?.cap : undefined
    if (cap !== undefined) {
      let local = 0
      if (meter !== undefined) local = meter.unreported(key, feature, now, cap.asOf ?? entitlements.issuedAt)
      else if (localStore !== undefined) {
        // No meter: what consume() counted in this process, above the snapshot.
        const counted = localStore.peek(
          counterKeyOf(entitlements.subject, feature, windowFor(entry, feature, now)),
        )
        const baseline = cap.resetsAt !== undefined && now >= cap.resetsAt ? 0 : cap.used
        if (counted !== undefined) local = Math.max(0, counted - baseline)
      }
      if (local > 0) asked = { ...context, usage: (context.usage ?? 0) + local }
    }
    const decision = decide(entitlements, feature, asked, at) as {
      -readonly [K in keyof Decision]: Decision[K]
    }
    decision.source = source
    decision.age = now - entry.confirmedAt
    // Feature names may come from requests: a customer's memo holds at most MAX_MEMO answers, so made-up names
    // cannot grow it without bound (they are still answered, just not remembered).
    if (plain && (entry.memo === undefined || entry.memo.size < MAX_MEMO || entry.memo.has(feature))) {
      entry.memo ??= new Map()
      const replaced = entry.memo.get(feature)
      if (replaced !== undefined) foldMemo(replaced)
      entry.memo.set(feature, {
        decision: Object.freeze(decision),
        until: memoUntil(entitlements, feature, now),
        hits: 0,
      })
    }
    return count(decision)
  }

  /**
   * A check that depends on nothing but the customer and the feature: its answer can be reused for a while. The
   * subject only counts as "the customer" when it is the cache key (multi-tenant); a single-tenant client keys its
   * one token by nothing, so a subject there is a condition to check each time (`subject_mismatch`).
   */
  function isPlain(context: CheckContext, key: string): boolean {
    return (
      (key !== OWN || context.subject === undefined) &&
      context.roles === undefined &&
      context.region === undefined &&
      context.device === undefined &&
      context.activeDevices === undefined &&
      context.amount === undefined &&
      context.usage === undefined
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
      for (const moment of [
        feature.trialEndsAt,
        feature.expiresAt,
        feature.graceEndsAt,
        feature.cap?.resetsAt,
      ]) {
        if (moment !== undefined && moment > now && moment < until) until = moment
      }
    }
    if (entitlements.notBefore !== undefined && entitlements.notBefore > now)
      until = Math.min(until, entitlements.notBefore)
    return until
  }

  // --- consume: check and use in one step, fleet-wide with a shared store ------------------------------------

  /** Without a fleet, the cap is counted in this process: one instance, the same semantics. */
  const localStore = fleet === undefined ? createMemoryUsageStore(() => platform.now()) : undefined
  const store: UsageCounterStore = fleet?.store ?? localStore!
  /** What this instance last saw of each fleet counter, and what it used while the store was out of reach. */
  const fleetSeen = new LRUCache<string, { used: number; owed: number }>({
    max: options.maxSubjects ?? 10_000,
  })

  /** Moves one counted decision from `before`'s bucket to `after`'s: consume() corrects what answer() counted. */
  function recount(before: Decision, after: Decision): Decision {
    const counts = decisions.get(before.feature)
    if (counts === undefined) return count(after)
    if (before.allowed) counts.allowed--
    else counts.denied--
    const reasons = counts.reasons as Record<string, number>
    reasons[before.reason] = (reasons[before.reason] ?? 1) - 1
    return count(after)
  }

  async function consume(feature: string, context: CheckContext): Promise<Decision> {
    const key = keyOf(context)
    let entry = cache.get(key)
    if (entry === undefined && !closed && !missing.has(key)) entry = await load(key)
    const asked = context.amount === undefined ? { ...context, amount: 1 } : context
    const checked = answer(entry, key, feature, asked)
    const amount = asked.amount ?? 1
    const cap = checked.allowed ? entry?.entitlements.features.get(feature)?.cap : undefined
    const subjectKey = context.subject
    const use = () => {
      if (meter !== undefined && amount > 0)
        meter.record(key, feature, amount, platform.now(), entry, undefined, undefined)
      const memo = entry?.memo?.get(feature)
      if (memo !== undefined) {
        foldMemo(memo)
        entry!.memo!.delete(feature)
      }
    }
    if (!checked.allowed) return checked
    if (cap === undefined || entry === undefined) {
      use()
      return checked
    }
    const entitlements = entry.entitlements
    const now = platform.now()
    const windowEnd = windowFor(entry, feature, now)
    const baseline = cap.resetsAt !== undefined && now >= cap.resetsAt ? 0 : cap.used
    const counterKey = counterKeyOf(entitlements.subject, feature, windowEnd)
    const expiresAt = windowEnd === NEVER ? undefined : windowEnd
    const hint = entitlements.features.get(feature)?.upgrade ?? entitlements.upgrade
    const decided = (used: number, allowed: boolean): Decision =>
      recount(checked, {
        ...checked,
        allowed,
        reason: allowed ? checked.reason : 'usage_cap_reached',
        used: allowed ? used - amount : used,
        remaining: Math.max(0, cap.limit - used),
        upgrade: allowed ? checked.upgrade : hint,
      })
    // One object per counter, changed in place: concurrent consumes see each other's outage counts.
    let seen = fleetSeen.get(counterKey)
    if (seen === undefined) {
      seen = { used: baseline, owed: 0 }
      fleetSeen.set(counterKey, seen)
    }
    try {
      const owed = seen.owed
      if (owed > 0) {
        // Back from an outage: the fleet learns what this instance used meanwhile, before anything else.
        seen.owed -= owed
        try {
          await store.consume({
            key: counterKey,
            amount: owed,
            limit: cap.limit,
            baseline,
            expiresAt,
            force: true,
          })
        } catch (error) {
          seen.owed += owed
          throw error
        }
      }
      const result = await store.consume({ key: counterKey, amount, limit: cap.limit, baseline, expiresAt })
      seen.used = result.used
      if (result.allowed) use()
      return decided(result.used, result.allowed)
    } catch (error) {
      report(
        'fleet',
        subjectKey,
        new EntitlementError('store_unavailable', 'the shared usage store failed', { cause: error }),
      )
      if (fleetPolicy === 'closed') {
        return recount(checked, {
          ...fallbackDecision(feature, 'closed', entitlements.subject),
          plan: entitlements.plan.id,
          source: checked.source,
          age: checked.age,
        })
      }
      // Local: from the last fleet count this instance saw, plus what it used since.
      const used = Math.max(seen.used, baseline) + seen.owed
      if (used + amount > cap.limit) return decided(used, false)
      seen.owed += amount
      use()
      return decided(used + amount, true)
    }
  }

  function counterKeyOf(subject: string, feature: string, windowEnd: number): string {
    return `${encodeURIComponent(subject)}:${encodeURIComponent(feature)}:${windowEnd}`
  }

  function keyOf(context: { subject?: string | undefined } | undefined): string {
    if (server === undefined) return OWN
    const subject = context?.subject
    if (typeof subject !== 'string' || subject.length === 0) {
      throw new TypeError('a multi-tenant client needs context.subject: the customer to check')
    }
    return subject
  }

  // --- revocations and events --------------------------------------------------------------------------------

  let revocationTimer: unknown
  async function refreshRevocations(): Promise<void> {
    if (server === undefined || closed) return
    const interval = serverOptions?.revocationIntervalMs ?? 300_000
    try {
      const response = await server.fetchRevocations(revokedEtag)
      if (response.status === 'ok') {
        revoked = new Set(response.revoked)
        revokedEtag = response.etag
        write(REVOKED_KEY, JSON.stringify({ revoked: response.revoked, etag: response.etag }))
        // A revoked token may have a successor already: ask for it.
        for (const [key, entry] of cache.entries()) {
          if (revoked.has(entry.entitlements.tokenId)) background(fetchFromSource(key, 'refresh'))
        }
      }
    } catch (error) {
      report('revocations', undefined, error)
    }
    if (interval > 0 && !closed) {
      platform.clearTimeout(revocationTimer)
      revocationTimer = platform.setTimeout(() => background(refreshRevocations()), interval)
    }
  }

  const events = new AbortController()
  async function listen(): Promise<void> {
    let attempt = 0
    let lastEventId: string | undefined
    while (!closed && server) {
      try {
        const body = await server.openEvents(events.signal, lastEventId)
        attempt = 0
        const decoder = new TextDecoder()
        const parse = createEventStreamParser((event) => {
          lastEventId = event.id ?? lastEventId
          if (event.event === 'revocations') background(refreshRevocations())
          if (event.event === 'entitlements') {
            let subject: unknown
            try {
              subject = (JSON.parse(event.data) as { subject?: unknown }).subject
            } catch {
              return
            }
            if (typeof subject === 'string' && cache.has(subject))
              background(fetchFromSource(subject, 'refresh'))
          }
        })
        const reader = body.getReader()
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          parse(decoder.decode(value, { stream: true }))
        }
      } catch (error) {
        if (closed) return
        report('events', undefined, error)
      }
      if (closed) return
      const wait = Math.max(1000, backoffDelay(attempt++, platform.random(), backoff))
      await new Promise<void>((resolve) => {
        const stop = () => {
          platform.clearTimeout(timer)
          resolve()
        }
        const timer = platform.setTimeout(() => {
          events.signal.removeEventListener('abort', stop)
          resolve()
        }, wait)
        events.signal.addEventListener('abort', stop, { once: true })
      })
    }
  }

  let summaryTimer: unknown
  function summarize(): void {
    if (closed) return
    foldAll()
    if (listeners.decision.size > 0 && decisions.size > 0) {
      emit('decision', { at: platform.now(), features: Object.fromEntries(decisions) })
    }
    saveTrustedTime()
    summaryTimer = platform.setTimeout(summarize, options.decisionSummaryIntervalMs ?? 60_000)
  }

  if (server) {
    background(ready.then(refreshRevocations))
    if (serverOptions?.events) void listen()
  }
  summaryTimer = platform.setTimeout(summarize, options.decisionSummaryIntervalMs ?? 60_000)

  // --- the client --------------------------------------------------------------------------------------------

  return {
    async check(feature, context = {}) {
      if (typeof feature !== 'string' || feature.length === 0)
        throw new TypeError('feature must be a non-empty string')
      const key = keyOf(context)
      let entry = cache.get(key)
      if (entry !== undefined) counters.hits++
      else {
        counters.misses++
        if (!closed && !missing.has(key)) entry = await load(key)
      }
      return answer(entry, key, feature, context)
    },

    checkSync(feature, context = {}) {
      if (typeof feature !== 'string' || feature.length === 0)
        throw new TypeError('feature must be a non-empty string')
      const key = keyOf(context)
      const entry = cache.get(key)
      if (entry !== undefined) {
        counters.hits++
        return answer(entry, key, feature, context)
      }
      counters.misses++
      if (missing.has(key) || closed) return answer(undefined, key, feature, context)
      background(load(key))
      return count({
        ...fallbackDecision(feature, 'closed', key === OWN ? context.subject : key),
        reason: 'not_loaded',
      })
    },

    async load(subject) {
      const key = keyOf({ subject })
      return (cache.get(key) ?? (await load(key)))?.entitlements
    },

    async refresh(subject) {
      const key = keyOf({ subject })
      await ready
      return (await fetchFromSource(key, 'refresh'))?.entitlements
    },

    entitlements(subject) {
      return cache.get(keyOf({ subject }))?.entitlements
    },

    on(type, listener) {
      const set = listeners[type] as Set<typeof listener>
      set.add(listener)
      return () => {
        set.delete(listener)
      }
    },

    stats() {
      foldAll()
      return {
        ...counters,
        revoked: revoked.size,
        cached: cache.size,
        decisions: Object.fromEntries(decisions),
        usage: meter?.stats() ?? NO_USAGE_STATS,
      }
    },

    record(metric, amount = 1, context = NO_RECORD_CONTEXT) {
      if (meter === undefined)
        throw new TypeError('record() needs somewhere to send usage: a server, or usage.url')
      if (typeof metric !== 'string' || metric.length === 0 || metric.length > 256)
        throw new EntitlementError('usage_invalid', 'metric must be a string of 1 to 256 characters')
      if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0)
        throw new EntitlementError('usage_invalid', 'amount must be a finite number of zero or more')
      const key = keyOf(context)
      let { dimensions, properties } = context
      if (dimensions !== undefined || properties !== undefined)
        ({ dimensions, properties } = validateRecordExtras(dimensions, properties))
      const now = platform.now()
      const entry = cache.peek(key)
      meter.record(key, metric, amount, now, entry, dimensions, properties)
      // A memoized answer for this metric no longer counts everything used.
      const memo = entry?.memo?.get(metric)
      if (memo !== undefined) {
        foldMemo(memo)
        entry!.memo!.delete(metric)
      }
    },

    async consume(feature, context = {}) {
      if (typeof feature !== 'string' || feature.length === 0)
        throw new TypeError('feature must be a non-empty string')
      return consume(feature, context)
    },

    async flush(flushOptions) {
      if (meter === undefined) return { sent: 0, pending: 0 }
      await ready
      return meter.flush(flushOptions?.keepalive === true)
    },

    setAsideUsage() {
      return meter?.setAside() ?? []
    },

    resendSetAsideUsage() {
      return meter?.resendSetAside() ?? 0
    },

    async close(closeOptions) {
      const deadlineMs = closeOptions?.deadlineMs ?? 5000
      if (!closed) {
        closed = true
        events.abort()
        platform.clearTimeout(revocationTimer)
        platform.clearTimeout(summaryTimer)
        for (const entry of cache.values()) platform.clearTimeout(entry.timer)
      }
      await ready
      const usage = (await meter?.close(deadlineMs)) ?? { sent: 0, persisted: 0, dropped: 0 }
      await Promise.allSettled([...loading.values()])
      saveTrustedTime()
      await Promise.allSettled([...writes])
      return usage
    },
  }
}
