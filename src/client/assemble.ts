import type { LicenseServerClient } from '../transport/license-server-client.js'
import { createLicenseServerClient } from '../transport/license-server-client.js'
import { createAnswerer } from './answers/answer.js'
import type { DecisionStats } from './answers/decision-stats.js'
import { createDecisionStats, startDecisionSummary } from './answers/decision-stats.js'
import { createMemoTable } from './answers/memo-table.js'
import type { ClientConfig } from './config.js'
import { createEmitter } from './emitter.js'
import { createLazyEventStream } from './lazy-event-stream.js'
import { createLazyLeases } from './leases/lazy-leases.js'
import type { MeteringPlugin } from './metering.js'
import type { DecisionSummaryEvent } from './options.js'
import type { Revocations } from './revocations.js'
import { createRevocations } from './revocations.js'
import type { SerializedStorage } from './serialized-storage.js'
import { createSerializedStorage } from './serialized-storage.js'
import { createThresholds } from './thresholds.js'
import { SINGLE_TENANT_KEY } from './tokens/cache-entry.js'
import type { TokenCache } from './tokens/token-cache.js'
import { createTokenCache } from './tokens/token-cache.js'
import { createAppSource, createServerSource } from './tokens/token-sources.js'
import { createTokenVerifier } from './tokens/token-verifier.js'
import type { TrustedClock } from './trusted-clock.js'
import { createTrustedClock } from './trusted-clock.js'

const TIME_KEY = 'entitle:trusted-time'
/**
 * With `background: 'requests'`, how long one event-stream connection is held: below the 30 s a Worker's
 * `waitUntil` keeps a request's work alive after its response, so the client ends it, not the runtime.
 */
const REQUEST_STREAM_LIFE_MS = 25_000

/** The cache key of a single-tenant client: its one license, whatever the context says. */
const singleTenantKey = (): string => SINGLE_TENANT_KEY

/** The cache key of the customer a context names: a multi-tenant client needs one. */
function subjectKey(context: { subject?: string | undefined } | undefined): string {
  const subject = context?.subject
  if (typeof subject !== 'string' || subject.length === 0)
    throw new TypeError('a multi-tenant client needs context.subject: the customer to check')
  return subject
}

/**
 * A power of two: 16 slots a customer up to 65 536 slots (4 096 customers; at least 256), then 2 a customer, up to
 * 2^20 (a client sized for half a million customers or more). The table's arrays cost 20 bytes a slot whether used
 * or not, so the default client (10 000 customers) keeps 65 536 (1.3 MB). A client sized for many more customers
 * once kept 65 536 too: at 100 000 customers a fifth of the checks of one feature, and nearly half of those of 15
 * features in rotation, found their slot taken by another customer's answer and were decided again. At 2 a
 * customer the arrays cost 40 bytes a customer.
 */
export const memoSlotsFor = (maxSubjects: number) =>
  2 **
  Math.max(
    Math.min(16, Math.max(8, Math.ceil(Math.log2(maxSubjects * 16)))),
    Math.min(20, Math.ceil(Math.log2(maxSubjects * 2))),
  )

/** The event stream, when the client hears the server's changes (`server.events`). */
function eventStreamFor(
  config: ClientConfig,
  server: LicenseServerClient | undefined,
  parts: {
    readonly tokens: TokenCache
    readonly revocations: Revocations
    readonly report: (during: 'events', subject: undefined, error: unknown) => void
    readonly background: (work: Promise<unknown>) => void
  },
) {
  if (server === undefined || !config.server?.events) return undefined
  const { tokens, revocations, report, background } = parts
  return createLazyEventStream({
    platform: config.platform,
    server,
    backoff: config.backoff,
    pollIntervalMs: config.server.pollIntervalMs,
    maxConnectionMs: config.background === 'requests' ? REQUEST_STREAM_LIFE_MS : Number.POSITIVE_INFINITY,
    onEntitlements: (subject) => {
      if (tokens.has(subject)) background(tokens.refresh(subject, 'refresh'))
    },
    onRevocations: () => background(revocations.refresh()),
    report: (error) => report('events', undefined, error),
    background,
  })
}

/** Usage alerts: fired once for a whole fleet where its store can claim a key, else by this client. */
function thresholdsFor(
  config: ClientConfig,
  storage: SerializedStorage,
  parts: Pick<ReturnType<typeof createEmitter>, 'emit' | 'report' | 'background'>,
) {
  const store = config.fleet?.store
  return createThresholds({
    platform: config.platform,
    storage,
    claim: store?.claim === undefined ? undefined : (key, expiresAt) => store.claim!(key, expiresAt),
    emit: (event) => parts.emit('threshold', event),
    report: (error) => parts.report('storage', undefined, error),
    background: parts.background,
  })
}

/**
 * What starts at a client's first use: reading what an earlier run stored (then `ready`), the decision summary's
 * timer, revocation polling and the event stream. Returns what stops the summary.
 */
function startInBackground(parts: {
  readonly config: ClientConfig
  readonly storage: SerializedStorage
  readonly clock: TrustedClock
  readonly revocations: Revocations
  readonly takeover: { restore(): Promise<unknown> } | undefined
  readonly thresholds: { restore(): Promise<unknown> }
  readonly stats: DecisionStats
  readonly fold: () => void
  readonly emit: (type: 'decision', event: DecisionSummaryEvent) => void
  readonly background: (work: Promise<unknown>) => void
  readonly events: { start(): void; catchUp(now: number): void } | undefined
  readonly ready: Promise<void>
  readonly readyNow: () => void
}): () => void {
  const { config, storage, clock, revocations, takeover, thresholds } = parts
  const reads = [storage.read(TIME_KEY), revocations.restore(), takeover?.restore(), thresholds.restore()]
  void Promise.all(reads).then(
    ([time]) => {
      clock.restore(Number(time))
      parts.readyNow()
    },
    () => parts.readyNow(),
  )
  parts.background(parts.ready.then(() => revocations.start()))
  parts.events?.start()
  return startDecisionSummary(
    config.platform,
    config.decisionSummaryIntervalMs,
    parts.stats,
    parts.fold,
    (event) => parts.emit('decision', event),
  )
}

/**
 * Builds the client's parts and wires them together: storage, trusted time, the verifier, the token source and
 * cache, revocations, usage alerts, metering (when the app passed it), answers, the event stream, the decision
 * summary. The public methods (`index.ts`) only call into what this returns.
 */
export function assembleClient(config: ClientConfig) {
  const { platform } = config
  const { emit, on, report, background } = createEmitter(platform)
  /** `started`: the background has begun (at the first use); `closed`: `close()` was called. */
  const lifecycle = { closed: false, started: false }
  const storage = createSerializedStorage(
    config.storage,
    (error) => report('storage', undefined, error),
    background,
  )
  const clock = createTrustedClock(platform, config.toleranceMs, (mark) =>
    storage.write(TIME_KEY, String(mark)),
  )
  const verifier = createTokenVerifier(config.verify, () => platform.now(), config.staleGraceMs)
  const server = config.server && createLicenseServerClient(config.server, platform)
  const revocationSource =
    server ?? (config.revocationSource && createLicenseServerClient(config.revocationSource, platform))
  const stats = createDecisionStats()
  // One customer needs a few slots; many get 16 each, up to 65 536 (about 13 MB when full, whatever their
  // number): every feature of 16 000 customers on a plan of 3, or of 4 000 on a plan of 15, or the hot ones among
  // a million.
  const memos = createMemoTable(server === undefined ? 256 : memoSlotsFor(config.maxSubjects), stats)

  const revocations = createRevocations({
    platform,
    source: revocationSource,
    intervalMs: config.revocationIntervalMs,
    storage,
    verifier: verifier.inner,
    // A revoked token may have a successor already: ask for it.
    revoked: () => {
      for (const [key, entry] of tokens.entries())
        if (revocations.has(entry.entitlements.tokenId)) background(tokens.refresh(key, 'refresh'))
    },
    report: (error) => report('revocations', undefined, error),
    background,
  })
  const thresholds = thresholdsFor(config, storage, { emit, report, background })
  // Only with the plug-in: a client made without it carries no metering code, and its checks count no local usage.
  const metering = (config.metering as MeteringPlugin | undefined)?.assemble(config, server, {
    storage,
    report,
    background,
    peek: (key) => tokens.peek(key),
  })
  // Resolved by start(): reading storage is I/O, which a Worker's module scope (where a client is made) refuses.
  let readyNow!: () => void
  const ready = new Promise<void>((resolve) => {
    readyNow = resolve
  })
  const serverSource = server && createServerSource(server, verifier)
  const tokens = createTokenCache({
    config,
    verifier,
    source: serverSource ?? createAppSource(config.token!, verifier, platform),
    storage,
    clock,
    memos,
    ready,
    isRevoked: (tokenId) => revocations.has(tokenId),
    emitChange: (event) => emit('change', event),
    report,
    background,
  })
  const keyOf = server === undefined ? singleTenantKey : subjectKey
  const leases = createLazyLeases({
    server,
    verifier,
    platform,
    storage,
    load: async (subject) => {
      const key = keyOf({ subject })
      return (tokens.get(key) ?? (await tokens.load(key)))?.entitlements
    },
    background,
    changed: (event) => emit('lease', event),
  })
  const answerer = createAnswerer({
    // Request-driven: what a timer or a held stream would have done, done by the next check (`events` is made
    // below; a check runs only after the client is assembled).
    runDue:
      config.runOverdue &&
      ((now: number) => {
        config.runOverdue!(now)
        if (lifecycle.started) events?.catchUp(now)
      }),
    config,
    tokens,
    clock,
    revocations,
    stats,
    memos,
    meter: metering?.meter,
    localCounters: metering?.localCounters,
    reservations: metering?.reservations,
    credits: metering?.credits,
    leases,
  })

  const actions = metering?.actions({
    ...{ tokens, answerer, stats, thresholds, keyOf },
    isClosed: () => lifecycle.closed,
  })
  const events = eventStreamFor(config, server, { tokens, revocations, report, background })
  let stopSummary = (): void => {}
  /**
   * Starts what runs in the background at the client's first use, not when it is made: a Worker makes its client
   * at module scope, where timers, random values and I/O are refused; its first request is where they may start.
   */
  function start(): void {
    if (lifecycle.started) return
    lifecycle.started = true
    const fold = answerer.fold
    const takeover = metering?.takeover
    const parts = { config, storage, clock, revocations, takeover, thresholds, stats, fold, emit, background }
    stopSummary = startInBackground({ ...parts, events, ready, readyNow })
  }

  return {
    config,
    platform,
    lifecycle,
    on,
    background,
    storage,
    clock,
    serverSource,
    revocations,
    tokens,
    answerer,
    thresholds,
    stats,
    keyOf,
    ready,
    start,
    leases,
    /** The metering plug-in's parts and actions, when the app passed it. */
    metering,
    actions,
    /** Stops every timer and stream but the meter's (which `close()` drains first). */
    stopBackground(): void {
      metering?.takeover.stop()
      events?.stop()
      revocations.stop()
      stopSummary()
    },
  }
}

export type ClientParts = ReturnType<typeof assembleClient>
