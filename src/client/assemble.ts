import { createEventStream } from '../transport/event-stream.js'
import { createLicenseServerClient } from '../transport/license-server-client.js'
import { createMemoryUsageStore } from '../usage/counter-store.js'
import { createAnswerer } from './answers/answer.js'
import { createDecisionStats, startDecisionSummary } from './answers/decision-stats.js'
import { createMemoTable } from './answers/memo-table.js'
import type { ClientConfig } from './config.js'
import { createConsume } from './consume/consume.js'
import { createReservations } from './consume/reservations.js'
import { createEmitter } from './emitter.js'
import { createOwnership } from './ownership.js'
import { createRevocations } from './revocations.js'
import { createSerializedStorage } from './serialized-storage.js'
import { createTakeover } from './takeover.js'
import { SINGLE_TENANT_KEY } from './tokens/cache-entry.js'
import { createTokenCache } from './tokens/token-cache.js'
import { createAppSource, createServerSource } from './tokens/token-sources.js'
import { createTokenVerifier } from './tokens/token-verifier.js'
import { createTrustedClock } from './trusted-clock.js'
import { createClientMeter } from './usage-destination.js'

const TIME_KEY = 'entitle:trusted-time'
const NOTHING_GRANTED: Readonly<Record<string, number>> = Object.freeze({})

/** An id for this client among the writers of its storage: random, new at each start. */
function randomId(): string {
  let id = ''
  for (const byte of crypto.getRandomValues(new Uint8Array(8))) id += byte.toString(16).padStart(2, '0')
  return id
}

/** A power of two between 256 and 65 536: 16 slots a customer. */
const memoSlotsFor = (maxSubjects: number) =>
  2 ** Math.min(16, Math.max(8, Math.ceil(Math.log2(maxSubjects * 16))))

/**
 * Builds the client's parts and wires them together: storage, trusted time, the verifier, the token source and
 * cache, revocations, the meter, answers and consume, the event stream, the decision summary. The public methods
 * (`index.ts`) only call into what this returns.
 */
export function assembleClient(config: ClientConfig) {
  const { platform } = config
  const { emit, on, report, background } = createEmitter(platform)
  const lifecycle = { closed: false }
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
  const ownership = createOwnership(config.storage, randomId())
  // Only a storage the app gave outlives the process: the default one needs no reservation to survive a crash.
  const reservations =
    config.persistTokens && config.fleet === undefined
      ? createReservations({
          storage: config.storage,
          key: ownership.reservationsKey,
          owner: ownership.record,
          now: () => platform.now(),
          failed: (error) => report('storage', undefined, error),
        })
      : undefined
  const meter =
    config.usage &&
    createClientMeter(config.usage, server, {
      platform,
      storage,
      journal: {
        key: ownership.journalKey,
        owner: ownership.record,
        granted: () => reservations?.grantedNow() ?? NOTHING_GRANTED,
      },
      peek: (key) => tokens.peek(key),
      report: (error) => report('usage', undefined, error),
      background,
    })
  const takeover = createTakeover({
    ownership,
    storage,
    meter,
    reservations,
    platform,
    keepLooking: config.persistTokens,
    background,
  })
  const ready = Promise.all([storage.read(TIME_KEY), revocations.restore(), takeover.restore()]).then(
    ([time]) => clock.restore(Number(time)),
  )
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
  const localCounters = config.fleet === undefined ? createMemoryUsageStore(() => platform.now()) : undefined
  const answerer = createAnswerer({
    config,
    tokens,
    clock,
    revocations,
    stats,
    memos,
    meter,
    localCounters,
    reservations,
  })

  /** The cache key of the customer a context names: a multi-tenant client needs one. */
  function keyOf(context: { subject?: string | undefined } | undefined): string {
    if (server === undefined) return SINGLE_TENANT_KEY
    const subject = context?.subject
    if (typeof subject !== 'string' || subject.length === 0)
      throw new TypeError('a multi-tenant client needs context.subject: the customer to check')
    return subject
  }
  const consume = createConsume({
    config,
    tokens,
    answerer,
    stats,
    meter,
    localCounters,
    reservations,
    keyOf,
    isClosed: () => lifecycle.closed,
    report,
  })
  const events =
    server !== undefined && config.server?.events
      ? createEventStream({
          platform,
          server,
          backoff: config.backoff,
          pollIntervalMs: config.server.pollIntervalMs,
          onEntitlements: (subject) => {
            if (tokens.has(subject)) background(tokens.refresh(subject, 'refresh'))
          },
          onRevocations: () => background(revocations.refresh()),
          report: (error) => report('events', undefined, error),
          background,
        })
      : undefined
  const stopSummary = startDecisionSummary(
    platform,
    config.decisionSummaryIntervalMs,
    stats,
    answerer.fold,
    (event) => emit('decision', event),
  )
  background(ready.then(() => revocations.start()))
  events?.start()

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
    meter,
    tokens,
    answerer,
    stats,
    consume,
    keyOf,
    ready,
    ownership,
    reservations,
    /** Stops every timer and stream but the meter's (which `close()` drains first). */
    stopBackground(): void {
      takeover.stop()
      events?.stop()
      revocations.stop()
      stopSummary()
    },
  }
}

export type ClientParts = ReturnType<typeof assembleClient>
