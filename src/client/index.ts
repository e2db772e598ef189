import type { Decision } from '../core/decision.js'
import type { Platform } from '../platform/platform.js'
import { type CloseResult, NO_USAGE_STATS } from '../usage/types.js'
import { emptyDecision } from './answers/answer.js'
import { takeSnapshot } from './answers/snapshot.js'
import { assembleClient, type ClientParts } from './assemble.js'
import { resolveOptions } from './config.js'
import { balanceView } from './credits/balance-view.js'
import type { MeteringActions } from './metering.js'
import type {
  CheckContext,
  EntitlementsClient,
  EntitlementsClientOptions,
  RecordContext,
  ReserveOptions,
} from './options.js'
import { type Entry, SINGLE_TENANT_KEY } from './tokens/cache-entry.js'

export type * from './options.js'

const NO_RECORD_CONTEXT: RecordContext = Object.freeze({})

/** `work`, or nothing once `ms` passed: a server that does not answer cannot hold `close()` past its deadline. */
function withDeadline(work: Promise<unknown>, ms: number, platform: Platform) {
  let timer: unknown
  return Promise.race([
    work.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = platform.setTimeout(resolve, ms)
    }),
  ]).finally(() => platform.clearTimeout(timer))
}

/** `client.reserve()`: loads the customer when it is not in memory, then holds. */
async function reserveCredits(parts: ClientParts, feature: string, options: ReserveOptions) {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('reserve() takes an options object')
  const { tokens, lifecycle } = parts
  const actions = metered(parts, 'reserve()')
  const key = parts.keyOf(options)
  let entry = tokens.get(key)
  if (entry === undefined && !lifecycle.closed && !tokens.hasVerdict(key)) entry = await tokens.load(key)
  return actions.reserve(entry, key, feature, options)
}

/** `client.balance()`: from memory; a customer not held yet starts loading, as `checkSync` does. */
function balanceOf(parts: ClientParts, type: string, subject: string | undefined) {
  const { tokens, lifecycle } = parts
  const key = parts.keyOf({ subject })
  const entry = tokens.get(key)
  if (entry === undefined) {
    if (!lifecycle.closed && !tokens.hasVerdict(key)) parts.background(tokens.load(key))
    return undefined
  }
  return balanceView(parts.metering?.credits, key, entry.entitlements, type, parts.platform.now())
}

/**
 * `close()`: gives seats back, stops the background, sends usage until the deadline and persists the rest, saves
 * trusted time, and resolves when every write is done. Never rejects.
 */
async function closeClient(parts: ClientParts, deadlineMs: number): Promise<CloseResult> {
  const { lifecycle, tokens, metering, platform } = parts
  // What was never started has storage to read before it can close (what an earlier run left, to send).
  parts.start()
  if (!lifecycle.closed) {
    lifecycle.closed = true
    parts.stopBackground()
    // Seats go back first, within the deadline: another holder may be waiting for one.
    await withDeadline(parts.leases.releaseAll(), deadlineMs, platform)
  }
  const loads = tokens.close()
  await parts.ready
  // What this client leaves (unsent usage) is for whichever starts next, or runs beside it, to take.
  metering?.ownership.close()
  const usage = (await metering?.meter?.close(deadlineMs)) ?? { sent: 0, persisted: 0, dropped: 0 }
  await metering?.reservations?.release()
  await loads
  parts.clock.save()
  parts.clock.stop()
  await parts.storage.settled()
  return usage
}

/** The metering plug-in's actions, or the error that says how to pass it. */
function metered(parts: ClientParts, method: string): MeteringActions {
  if (parts.actions === undefined)
    throw new TypeError(
      `${method} needs metering: import { metering } from 'entitle' and pass it, createEntitlements({ ..., metering })`,
    )
  return parts.actions
}

function checkFeature(feature: unknown): void {
  if (typeof feature !== 'string' || feature.length === 0)
    throw new TypeError('feature must be a non-empty string')
}

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
  const parts = assembleClient(config)
  const { lifecycle, tokens, answerer, stats, keyOf, ready, background, start } = parts
  const meter = parts.metering?.meter
  const { answer } = answerer
  /** Lookups of a customer in memory: the facade's own counters. */
  const lookups = { hits: 0, misses: 0 }

  /** The customer is not in memory yet: a load is started, and this answer says so. */
  function notLoadedYet(key: string, feature: string, context: CheckContext): Decision {
    background(tokens.load(key))
    const subject = key === SINGLE_TENANT_KEY ? context.subject : key
    return stats.count(emptyDecision(feature, false, 'not_loaded', subject, 'fallback'))
  }

  /**
   * A check that states `usage` (seats in use) of a numeric limit with thresholds: the alerts it crossed fire. One
   * property read on every other check.
   */
  function toldUsage(decision: Decision, entry: Entry | undefined, feature: string, context: CheckContext) {
    if (context.usage === undefined || entry === undefined) return decision
    if (decision.reason !== 'invalid_request' && decision.reason !== 'subject_mismatch')
      parts.thresholds.observeLimit(entry.entitlements, feature, context.usage)
    return decision
  }

  /** The entry in memory for `key`, counted as a hit or a miss. */
  function lookUp(key: string): Entry | undefined {
    const entry = tokens.get(key)
    if (entry !== undefined) lookups.hits++
    else lookups.misses++
    return entry
  }

  return {
    async check(feature, context = {}) {
      if (!lifecycle.started) start()
      checkFeature(feature)
      const key = keyOf(context)
      let entry = lookUp(key)
      if (entry === undefined && !lifecycle.closed && !tokens.hasVerdict(key)) entry = await tokens.load(key)
      return toldUsage(answer(entry, key, feature, context), entry, feature, context)
    },
    checkSync(feature, context = {}) {
      if (!lifecycle.started) start()
      checkFeature(feature)
      const key = keyOf(context)
      const entry = lookUp(key)
      if (entry !== undefined || tokens.hasVerdict(key) || lifecycle.closed)
        return toldUsage(answer(entry, key, feature, context), entry, feature, context)
      return notLoadedYet(key, feature, context)
    },
    snapshot(subject, context) {
      start()
      const { snapshot, hit } = takeSnapshot(parts, keyOf({ subject }), subject, context)
      if (hit) lookups.hits++
      return snapshot
    },
    async load(subject) {
      start()
      const key = keyOf({ subject })
      return (tokens.get(key) ?? (await tokens.load(key)))?.entitlements
    },
    async refresh(subject) {
      start()
      const key = keyOf({ subject })
      await ready
      return (await tokens.refresh(key, 'refresh'))?.entitlements
    },
    entitlements: (subject) => tokens.get(keyOf({ subject }))?.entitlements,
    on: parts.on,
    stats() {
      answerer.fold()
      return {
        ...lookups,
        fetches: parts.serverSource?.stats.fetches ?? 0,
        notModified: parts.serverSource?.stats.notModified ?? 0,
        ...tokens.stats,
        revoked: parts.revocations.size,
        cached: tokens.size,
        decisions: stats.snapshot(),
        usage: meter?.stats() ?? NO_USAGE_STATS,
      }
    },
    record(metric, amount = 1, context = NO_RECORD_CONTEXT) {
      start()
      metered(parts, 'record()').record(metric, amount, context)
    },
    async consume(feature, context: CheckContext = {}) {
      start()
      const actions = metered(parts, 'consume()')
      checkFeature(feature)
      return actions.consume(feature, context)
    },
    consumeSync(feature, context: CheckContext = {}) {
      start()
      const actions = metered(parts, 'consumeSync()')
      checkFeature(feature)
      if (config.fleet !== undefined)
        throw new TypeError(
          'with a fleet store, consume() counts across instances: use consume(), not consumeSync()',
        )
      const key = keyOf(context)
      const entry = tokens.get(key)
      if (entry !== undefined || tokens.hasVerdict(key) || lifecycle.closed)
        return actions.consumeHere(entry, key, feature, context)
      return notLoadedYet(key, feature, context)
    },
    async importRevocations(signedList) {
      start()
      await ready
      return parts.revocations.import(signedList)
    },
    async flush(flushOptions) {
      start()
      if (meter === undefined) return { sent: 0, pending: 0 }
      await ready
      return meter.flush(flushOptions?.keepalive === true)
    },
    setAsideUsage: () => meter?.setAside() ?? [],
    resendSetAsideUsage: () => meter?.resendSetAside() ?? 0,
    lease(pool, leaseOptions) {
      start()
      if (lifecycle.closed) return Promise.reject(new TypeError('the client is closed'))
      return parts.leases.acquire(pool, leaseOptions)
    },
    async reserve(feature, reserveOptions = {}) {
      start()
      checkFeature(feature)
      return reserveCredits(parts, feature, reserveOptions)
    },
    balance(type, balanceOptions) {
      start()
      return balanceOf(parts, type, balanceOptions?.subject)
    },
    releaseLeases: (releaseOptions) => parts.leases.releaseAll(releaseOptions?.keepalive === true),
    close: (closeOptions) => closeClient(parts, closeOptions?.deadlineMs ?? config.closeDeadlineMs),
  }
}
