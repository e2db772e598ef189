import { featureNames } from '../decide-all.js'
import type { Decision } from '../decision.js'
import { createLicenseServerClient, type LicenseServerClient } from '../license-server.js'
import { NO_USAGE_STATS } from '../usage/types.js'
import { checkRecord, cleanRecordExtras } from '../usage/validate.js'
import { createMemoryUsageStore } from '../usage-store.js'
import { createAnswerer, emptyDecision } from './answer.js'
import { createConsume } from './consume.js'
import { createDecisionStats, startDecisionSummary } from './decision-stats.js'
import { createEmitter } from './emitter.js'
import { createEventStream } from './event-stream.js'
import { createClientMeter } from './meter.js'
import type { CheckContext, EntitlementsClient, EntitlementsClientOptions, RecordContext } from './options.js'
import { resolveOptions } from './options.js'
import { createRevocations } from './revocations.js'
import { createSerializedStorage } from './serialized-storage.js'
import { createTokenCache, OWN } from './token-cache.js'
import { createTokenVerifier } from './token-verifier.js'
import { createTrustedClock } from './trusted-clock.js'

export type * from './options.js'

const TIME_KEY = 'entitle:trusted-time'
/** A power of two between 256 and 65 536: 16 slots a customer. */
const memoSlotsFor = (maxSubjects: number) =>
  2 ** Math.min(16, Math.max(8, Math.ceil(Math.log2(maxSubjects * 16))))
const NO_RECORD_CONTEXT: RecordContext = Object.freeze({})
const NO_DECISIONS = Object.freeze(Object.create(null) as Record<string, Decision>)

/**
 * Creates the long-lived client an app makes once: it keeps each customer's verified entitlements in memory,
 * answers checks from there, refreshes them before they expire, hears upgrades and revocations, and keeps working
 * from the last-known-good token when the license server cannot be reached. Lifecycle: `docs/client.md`.
 *
 * @example
 * ```ts
 * const entitlements = createEntitlements({
 *   server: { url: 'http://127.0.0.1:8787', apiKey: process.env.LICENSE_API_KEY, events: true },
 *   keys: new URL('http://127.0.0.1:8787/.well-known/jwks.json'),
 *   issuer: 'http://127.0.0.1:8787',
 *   audience: 'acme-editor',
 * })
 * const decision = await entitlements.check('export', { subject: customerId, roles: user.roles })
 * ```
 */
export function createEntitlements(options: EntitlementsClientOptions): EntitlementsClient {
  const config = resolveOptions(options)
  const { platform } = config
  const { emit, on, report, background } = createEmitter(platform)
  const storage = createSerializedStorage(
    config.storage,
    (error) => report('storage', undefined, error),
    background,
  )
  const clock = createTrustedClock(platform, config.toleranceMs, (mark) =>
    storage.write(TIME_KEY, String(mark)),
  )
  const verifier = createTokenVerifier(config.verify, () => platform.now(), config.staleGraceMs)
  const server: LicenseServerClient | undefined =
    options.server && createLicenseServerClient(options.server, platform)
  const revocationSource =
    server ?? (options.revocations && createLicenseServerClient(options.revocations, platform))
  const stats = createDecisionStats()
  const counters = { hits: 0, misses: 0, fetches: 0, notModified: 0, refreshes: 0, failures: 0 }
  let closed = false

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
  const meter = createClientMeter(options, server, {
    platform,
    storage,
    peek: (key) => tokens.peek(key),
    report: (error) => report('usage', undefined, error),
    background,
  })
  const ready = Promise.all([storage.read(TIME_KEY), revocations.restore(), meter?.restore()]).then(
    ([time]) => clock.restore(Number(time)),
  )
  const tokens = createTokenCache({
    config,
    verifier,
    server,
    tokenSource: options.token,
    storage,
    clock,
    ready,
    isRevoked: (tokenId) => revocations.has(tokenId),
    emitChange: (event) => emit('change', event),
    report,
    background,
    counters,
  })
  const localStore = options.fleet === undefined ? createMemoryUsageStore(() => platform.now()) : undefined
  const answerer = createAnswerer({
    config,
    tokens,
    clock,
    revocations,
    stats,
    meter,
    localStore,
    // One customer needs a few slots; many get 16 each, up to 65 536 (about 13 MB when full, whatever their
    // number): every feature of 16 000 customers on a plan of 3, or of 4 000 on a plan of 15, or the hot ones
    // among a million.
    memoSlots: server === undefined ? 256 : memoSlotsFor(config.maxSubjects),
  })
  const { answer } = answerer

  function keyOf(context: { subject?: string | undefined } | undefined): string {
    if (server === undefined) return OWN
    const subject = context?.subject
    if (typeof subject !== 'string' || subject.length === 0)
      throw new TypeError('a multi-tenant client needs context.subject: the customer to check')
    return subject
  }
  const { consume, consumeHere } = createConsume({
    config,
    tokens,
    answerer,
    stats,
    meter,
    fleet: options.fleet?.store,
    localStore,
    keyOf,
    isClosed: () => closed,
    report,
  })
  const events =
    server !== undefined && options.server?.events
      ? createEventStream({
          platform,
          server,
          backoff: config.backoff,
          onEntitlements: (subject) => {
            if (tokens.has(subject)) background(tokens.refresh(subject, 'refresh'))
          },
          onRevocations: () => background(revocations.refresh()),
          report: (error) => report('events', undefined, error),
        })
      : undefined

  const foldAll = answerer.fold
  const stopSummary = startDecisionSummary(
    platform,
    config.decisionSummaryIntervalMs,
    stats,
    foldAll,
    (event) => emit('decision', event),
  )
  background(ready.then(() => revocations.start()))
  events?.start()

  function checkFeature(feature: unknown): void {
    if (typeof feature !== 'string' || feature.length === 0)
      throw new TypeError('feature must be a non-empty string')
  }

  return {
    async check(feature, context = {}) {
      checkFeature(feature)
      const key = keyOf(context)
      let entry = tokens.get(key)
      if (entry !== undefined) counters.hits++
      else {
        counters.misses++
        if (!closed && !tokens.hasVerdict(key)) entry = await tokens.load(key)
      }
      return answer(entry, key, feature, context)
    },
    checkSync(feature, context = {}) {
      checkFeature(feature)
      const key = keyOf(context)
      const entry = tokens.get(key)
      if (entry !== undefined) {
        counters.hits++
        return answer(entry, key, feature, context)
      }
      counters.misses++
      if (tokens.hasVerdict(key) || closed) return answer(undefined, key, feature, context)
      background(tokens.load(key))
      return stats.count(
        emptyDecision(feature, false, 'not_loaded', key === OWN ? context.subject : key, 'fallback'),
      )
    },
    snapshot(subject, context) {
      const key = keyOf({ subject })
      const entry = tokens.get(key)
      const at = platform.now()
      if (entry === undefined) {
        const verdict = tokens.verdict(key)
        if (verdict === undefined && !closed) background(tokens.load(key))
        const status =
          verdict === undefined
            ? 'not_loaded'
            : (verdict.reason ?? (verdict.error === 'token_expired' ? 'expired' : 'token_invalid'))
        return Object.freeze({ subject, status, plan: undefined, at, decisions: NO_DECISIONS })
      }
      counters.hits++
      const asked: CheckContext = key === OWN ? { ...context } : { ...context, subject: key }
      const decisions = Object.create(null) as Record<string, Decision>
      // One snapshot, one source: a token fetched for it is `fresh` in every decision, not only the first.
      const origin = entry.origin
      for (const name of featureNames(entry.entitlements)) {
        entry.origin = origin
        decisions[name] = answer(entry, key, name, asked)
      }
      return Object.freeze({
        subject: entry.entitlements.subject,
        status: 'loaded' as const,
        plan: entry.entitlements.plan.id,
        at,
        decisions: Object.freeze(decisions),
      })
    },
    async load(subject) {
      const key = keyOf({ subject })
      return (tokens.get(key) ?? (await tokens.load(key)))?.entitlements
    },
    async refresh(subject) {
      const key = keyOf({ subject })
      await ready
      return (await tokens.refresh(key, 'refresh'))?.entitlements
    },
    entitlements: (subject) => tokens.get(keyOf({ subject }))?.entitlements,
    on,
    stats() {
      foldAll()
      const usage = meter?.stats() ?? NO_USAGE_STATS
      return {
        ...counters,
        revoked: revocations.size,
        cached: tokens.size,
        decisions: stats.snapshot(),
        usage,
      }
    },
    record(metric, amount = 1, context = NO_RECORD_CONTEXT) {
      if (meter === undefined)
        throw new TypeError('record() needs somewhere to send usage: a server, or usage.url')
      checkRecord(metric, amount)
      const key = keyOf(context)
      let { dimensions, properties } = context
      if (dimensions !== undefined || properties !== undefined)
        ({ dimensions, properties } = cleanRecordExtras(dimensions, properties))
      const entry = tokens.peek(key)
      meter.record(key, metric, amount, platform.now(), entry, dimensions, properties)
      answerer.invalidate(entry, metric)
    },
    async consume(feature, context: CheckContext = {}) {
      checkFeature(feature)
      return consume(feature, context)
    },
    consumeSync(feature, context: CheckContext = {}) {
      checkFeature(feature)
      if (options.fleet !== undefined)
        throw new TypeError(
          'with a fleet store, consume() counts across instances: use consume(), not consumeSync()',
        )
      const key = keyOf(context)
      const entry = tokens.get(key)
      if (entry !== undefined || tokens.hasVerdict(key) || closed)
        return consumeHere(entry, key, feature, context)
      background(tokens.load(key))
      return stats.count(
        emptyDecision(feature, false, 'not_loaded', key === OWN ? context.subject : key, 'fallback'),
      )
    },
    async importRevocations(signedList) {
      await ready
      return revocations.import(signedList)
    },
    async flush(flushOptions) {
      if (meter === undefined) return { sent: 0, pending: 0 }
      await ready
      return meter.flush(flushOptions?.keepalive === true)
    },
    setAsideUsage: () => meter?.setAside() ?? [],
    resendSetAsideUsage: () => meter?.resendSetAside() ?? 0,
    async close(closeOptions) {
      const deadlineMs = closeOptions?.deadlineMs ?? 5000
      if (!closed) {
        closed = true
        events?.stop()
        revocations.stop()
        stopSummary()
      }
      const loads = tokens.close()
      await ready
      const usage = (await meter?.close(deadlineMs)) ?? { sent: 0, persisted: 0, dropped: 0 }
      await loads
      clock.save()
      clock.stop()
      await storage.settled()
      return usage
    },
  }
}
