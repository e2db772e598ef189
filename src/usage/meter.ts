import { EntitlementError } from '../core/errors.js'
import type { Platform } from '../platform/platform.js'
import type { UsageResponse } from '../transport/usage-response.js'
import { createAggregator, sumInto } from './aggregator.js'
import { createBatchQueue } from './batch-queue.js'
import { readJournal } from './journal.js'
import { createIdGenerator } from './line.js'
import { createLocalUsage } from './local-usage.js'
import { createPersistence } from './persistence.js'
import { createSendSchedule } from './send-schedule.js'
import { createSender } from './sender.js'
import { createSetAside } from './set-aside.js'
import {
  type CloseResult,
  type FlushResult,
  NO_USAGE_STATS,
  type UsageLine,
  type UsageStats,
} from './types.js'

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
  read(key: string): Promise<string | undefined>
  write(key: string, value: string): void
}

/**
 * The batched usage reporter: sums records in memory (`aggregator.ts`), keeps the local counts checks read
 * (`local-usage.ts`), queues sealed lines (`batch-queue.ts`) that the sender delivers with stable ids so a retry is
 * counted once (`sender.ts`) when the schedule says (`send-schedule.ts`), and journals what is unconfirmed so a
 * restart loses at most `persistIntervalMs` (`persistence.ts`, `journal.ts`). Protocol and guarantees:
 * `docs/metering.md`.
 */
export function createUsageMeter(
  settings: MeterSettings,
  around: {
    readonly platform: Platform
    /** Sends one batch; never throws. */
    readonly send: (batchId: string, body: string, keepalive: boolean) => Promise<UsageResponse>
    readonly tokens: MeterTokens
    readonly journal: MeterJournalStorage
    readonly report: (error: EntitlementError) => void
    readonly background: (work: Promise<unknown>) => void
  },
) {
  const { platform, tokens } = around
  const { flushIntervalMs, maxQueuedLines } = settings
  const nextId = createIdGenerator()

  const { pending: _pending, setAside: _setAside, ...zero } = NO_USAGE_STATS
  const stats: { -readonly [K in keyof typeof zero]: (typeof zero)[K] } = { ...zero }
  const local = createLocalUsage()
  const { counters } = local
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
  const persistence = createPersistence({
    platform,
    persistIntervalMs: settings.persistIntervalMs,
    contents: () => ({
      batches: [...queue.unsent().failed, ...sender.inFlight()],
      waiting: queue.unsent().waiting,
      open: lines.open,
      setAside: setAside.lines(),
      confirmed: local.confirmedUnits(platform.now()),
    }),
    unconfirmed: pending,
    read: around.journal.read,
    write: around.journal.write,
    fail,
  })
  let closed = false
  let dropReported = 0

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

  function drop(amount: number): void {
    stats.dropped++
    stats.droppedUnits += amount
    // One report per flush interval, not one per record: a full queue must not flood the error listeners.
    const now = platform.now()
    if (now >= dropReported + flushIntervalMs) {
      dropReported = now
      fail(
        new EntitlementError(
          'usage_dropped',
          closed
            ? 'usage recorded after close() was dropped'
            : `the usage queue is full (${maxQueuedLines} lines): records are being dropped`,
        ),
      )
    }
  }

  /**
   * Counts `amount` of `metric` for the customer `key`. Synchronous and O(1): in aggregate mode, a record for a
   * line that exists is two Map lookups and two additions.
   */
  function record(
    key: string,
    metric: string,
    amount: number,
    now: number,
    source: unknown,
    dimensions: Record<string, string> | undefined,
    properties: Record<string, unknown> | undefined,
  ): void {
    stats.recorded++
    let counter = counters.get(key)?.get(metric)
    if (counter === undefined || counter.source !== source || now >= counter.windowEnd) {
      counter = local.counterFor(key, metric, tokens.windowFor(source, metric, now), now)
      counter.source = source
    }
    counter.pending += amount
    if (closed) {
      drop(amount)
      return
    }
    if (!schedule.armed) schedule.wake(flushIntervalMs)
    persistence.changed()
    // The hot path: one more record for the customer's open plain line.
    if (!raw && dimensions === undefined && sumInto(counter.line, amount, now)) {
      stats.aggregated++
      return
    }
    const added = lines.add(counter, key, metric, amount, now, dimensions, properties)
    if (added === 'opened') {
      if (queue.full(lines.open.length, lines.openBytes)) schedule.wake(0)
    } else if (added === 'dropped') drop(amount)
  }

  return {
    record,
    unreported: local.unreported,

    /** Takes back what an earlier run left, and sends it soon. */
    async restore(): Promise<void> {
      const restored = await persistence.restore((text) =>
        readJournal(text, { now: platform.now(), local, queue, setAside, subjectOf: tokens.subjectOf }),
      )
      if (restored && pending() > 0) schedule.wake(0)
    },

    /**
     * Sends everything queued now, ignoring any backoff, and resolves when it is confirmed, or when a batch failed
     * and what is left is persisted. With `keepalive` (a page being hidden), everything is persisted first and
     * then sent in `keepalive` requests within the browser's 64 KiB budget, without waiting for answers.
     */
    async flush(keepalive = false): Promise<FlushResult> {
      const before = stats.sent
      if (keepalive) {
        sealOpenLines()
        persistence.now()
        await sender.flushKeepalive()
      } else await sender.flushNow()
      return { sent: stats.sent - before, pending: persistence.now() }
    },

    /** Stops the timers, sends what it can before `deadlineMs`, and persists the rest. Never rejects. */
    async close(deadlineMs: number): Promise<CloseResult> {
      const before = stats.sent
      if (!closed) {
        if (deadlineMs > 0) {
          let timer: unknown
          const deadline = new Promise<void>((resolve) => {
            timer = platform.setTimeout(resolve, deadlineMs)
          })
          await Promise.race([sender.flushNow(), deadline])
          platform.clearTimeout(timer)
        }
        closed = true
        sender.stop()
        persistence.stop()
      }
      return { sent: stats.sent - before, persisted: persistence.now(), dropped: stats.dropped }
    },

    stats(): UsageStats {
      return { ...stats, pending: pending(), setAside: setAside.lines().length }
    },

    setAside(): readonly UsageLine[] {
      return setAside.lines().map((line) => ({
        ...(JSON.parse(line.json) as UsageLine),
        ...(line.reason === undefined ? {} : { reason: line.reason }),
      }))
    },

    /** Queues the set-aside lines again (same ids) after the cause was fixed; returns how many. */
    resendSetAside(): number {
      const taken = setAside.takeAll()
      for (const line of taken) queue.enqueue(line)
      if (taken.length > 0) {
        persistence.touched()
        schedule.wake(0)
      }
      return taken.length
    },
  }
}

export type UsageMeter = ReturnType<typeof createUsageMeter>
