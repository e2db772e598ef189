import { EntitlementError } from '../core/errors.js'
import type { Platform } from '../platform/platform.js'
import { withGetters } from '../platform/with-getters.js'
import type { UsageResponse } from '../transport/usage-response.js'
import { createAggregator } from './aggregator.js'
import { createBatchQueue } from './batch-queue.js'
import { createIdGenerator } from './line.js'
import { createLocalUsage } from './local-usage.js'
import { createPersistence } from './persistence.js'
import { createSendSchedule } from './send-schedule.js'
import { createSender } from './sender.js'
import { createSetAside } from './set-aside.js'
import { NO_USAGE_STATS } from './types.js'

/** The meter's settings, every one filled in (the client's option resolution does it). */
export interface MeterSettings {
  readonly mode: 'aggregate' | 'raw'
  readonly flushIntervalMs: number
  readonly maxBatchLines: number
  readonly maxBatchBytes: number
  readonly maxInFlight: number
  readonly maxQueuedLines: number
  readonly maxSetAsideLines: number
  readonly persistIntervalMs: number
  readonly backoff: { readonly initialMs: number; readonly maxMs: number }
}

/** What the client's token cache tells the meter about a customer. */
export interface MeterTokens {
  /** The customer a cache key stands for on the wire (the single-tenant key resolves to its token's subject). */
  subjectOf(key: string): string | undefined
  /**
   * The end of the usage window `metric` is in at `now`, given `source` (the client passes its cache entry). Asked
   * only when `source` changed or the last window ended.
   */
  windowFor(source: unknown, metric: string, now: number): number
  /** When the token in memory for a cache key was issued (epoch ms), if one is there. */
  issuedAt(key: string): number | undefined
}

/** Where the meter's journal lives: the client's storage (writes serialized per key, awaited by `close()`). */
export interface MeterJournalStorage {
  /** This writer's own key for it. */
  readonly key: string
  /** Who writes it, recorded with each write. */
  readonly owner: () => Readonly<Record<string, unknown>>
  /** What `consume()` has granted per cap counter, recorded with each write (see the cap reservations). */
  readonly granted: () => Readonly<Record<string, number>>
  read(key: string): Promise<string | undefined>
  write(key: string, value: string): void
}

/** What surrounds a meter: the clock, the way to the server, the tokens, the journal's storage, error reports. */
export interface MeterSurroundings {
  readonly platform: Platform
  /** Sends one batch; never throws. */
  readonly send: (batchId: string, body: string, keepalive: boolean) => Promise<UsageResponse>
  readonly tokens: MeterTokens
  readonly journal: MeterJournalStorage
  readonly report: (error: EntitlementError) => void
  readonly background: (work: Promise<unknown>) => void
}

/**
 * The usage pipeline, wired: records sum into open lines (the aggregator) and count locally; sealed lines queue up
 * (the batch queue) for the sender, which the send schedule wakes; what is not confirmed is journaled
 * (persistence). Returns the parts for the meter's public methods (`meter.ts`).
 */
export function createPipeline(settings: MeterSettings, around: MeterSurroundings) {
  const { platform, tokens } = around
  const { flushIntervalMs, maxQueuedLines } = settings
  const nextId = createIdGenerator()

  const { pending: _pending, setAside: _setAside, ...zero } = NO_USAGE_STATS
  const stats: { -readonly [K in keyof typeof zero]: (typeof zero)[K] } = { ...zero }
  const local = createLocalUsage()
  const raw = settings.mode === 'raw'
  const queue = createBatchQueue({ ...settings, nextId })
  const pending = () => lines.open.length + sender.pending()
  const lines = createAggregator({ raw, maxQueuedLines, nextId, queued: pending, stats })
  const setAside = createSetAside(settings.maxSetAsideLines, {
    released: local.release,
    dropped: (line) => {
      stats.dropped++
      stats.droppedUnits += line.amount
    },
  })
  const schedule = createSendSchedule({
    platform,
    backoff: settings.backoff,
    tick: (now) => local.prune(now, tokens.issuedAt),
    due: () =>
      void sender.drain().then(() => {
        const now = platform.now()
        if (pending() > 0) schedule.wake(Math.max(schedule.holdLeft(now), flushIntervalMs))
      }),
  })
  const sender = createSender({
    platform,
    maxInFlight: settings.maxInFlight,
    queue,
    setAside,
    schedule,
    send: around.send,
    background: around.background,
    sealOpenLines,
    acknowledged: (line, at) => {
      stats.sent++
      local.acknowledge(line, at)
    },
    retried: () => {
      stats.retried++
    },
    journalChanged: () => persistence.touched(),
    fail,
  })
  const persistence = createPersistence(
    withGetters(
      {
        platform,
        persistIntervalMs: settings.persistIntervalMs,
        contents: () => ({
          batches: [...queue.unsent().failed, ...sender.inFlight()],
          waiting: queue.unsent().waiting,
          open: lines.current(),
          setAside: setAside.lines(),
          confirmed: local.confirmedUnits(platform.now()),
          owner: around.journal.owner(),
          granted: around.journal.granted(),
        }),
        unconfirmed: pending,
        read: around.journal.read,
        write: around.journal.write,
        fail,
      },
      // Read at the first write: the key names this writer, made on first use (not at construction).
      { key: () => around.journal.key },
    ),
  )
  function fail(error: EntitlementError): void {
    stats.lastError = error
    around.report(error)
  }

  /**
   * Seals every open line into the queue, or sets it aside when the protocol's rules would have the server refuse
   * it (a subject the wire cannot carry).
   */
  function sealOpenLines(): void {
    const { ready, refused } = lines.seal(tokens.subjectOf)
    for (const line of ready) queue.enqueue(line)
    if (refused.length === 0) return
    for (const line of refused) setAside.add(line, line.reason!)
    fail(
      new EntitlementError(
        'usage_rejected',
        `${refused.length} usage line(s) set aside unsent: the license server would refuse them (first: ${refused[0]!.reason})`,
      ),
    )
  }

  return { stats, local, queue, lines, setAside, schedule, sender, persistence, pending, fail, sealOpenLines }
}
