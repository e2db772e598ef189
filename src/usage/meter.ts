import { createDropReport } from './drop-report.js'
import { readJournal } from './journal.js'
import { addToOpenLine } from './open-line.js'
import { createPipeline, type MeterSettings, type MeterSurroundings } from './pipeline.js'
import { sendBefore } from './send-before.js'
import type { CloseResult, FlushResult, UsageLine, UsageStats } from './types.js'

export type { MeterJournalStorage, MeterSettings, MeterSurroundings, MeterTokens } from './pipeline.js'

/**
 * The batched usage reporter: sums records in memory (`aggregator.ts`), keeps the local counts checks read
 * (`local-usage.ts`), queues sealed lines (`batch-queue.ts`) that the sender delivers with stable ids so a retry is
 * counted once (`sender.ts`) when the schedule says (`send-schedule.ts`), and journals what is unconfirmed so a
 * restart loses at most `persistIntervalMs` (`persistence.ts`, `journal.ts`). Protocol and guarantees:
 * `docs/metering.md`.
 */
export function createUsageMeter(settings: MeterSettings, around: MeterSurroundings) {
  const { platform, tokens } = around
  const { flushIntervalMs, maxQueuedLines } = settings
  const raw = settings.mode === 'raw'
  const {
    stats,
    local,
    queue,
    lines,
    setAside,
    schedule,
    sender,
    persistence,
    pending,
    fail,
    sealOpenLines,
  } = createPipeline(settings, around)
  const { counters } = local
  const read = (text: string) =>
    readJournal(text, { now: platform.now(), local, queue, setAside, subjectOf: tokens.subjectOf })
  let closed = false
  const drop = createDropReport({ platform, stats, fail, flushIntervalMs, maxQueuedLines })

  /**
   * Counts `amount` of `metric` for the customer `key`. Synchronous and O(1): in aggregate mode, a record for a
   * line that exists is two Map lookups and two additions, both into the counter (`open-line.ts`).
   */
  function record(
    key: string,
    metric: string,
    amount: number,
    now: number,
    source: unknown,
    dimensions: Record<string, string> | undefined,
    properties: Record<string, unknown> | undefined,
    resource?: string,
  ): void {
    stats.recorded++
    let counter = counters.get(key)?.get(metric)
    if (counter === undefined || counter.source !== source || now >= counter.windowEnd) {
      counter = local.counterFor(key, metric, tokens.windowFor(source, metric, now), now)
      counter.source = source
    }
    counter.pending += amount
    // A resource's usage counts for the metric and for the resource, which holds its lines.
    const account = counter
    if (resource !== undefined) {
      counter = local.resourceCounterFor(account, key, metric, resource, now)
      counter.pending += amount
    }
    if (closed) {
      drop(amount, closed)
      return
    }
    if (!schedule.armed) schedule.wake(flushIntervalMs)
    persistence.changed()
    // The hot path: one more record for the customer's open plain line.
    if (!raw && dimensions === undefined && addToOpenLine(counter, amount, now)) {
      stats.aggregated++
      return
    }
    const added = lines.add(counter, key, metric, amount, now, dimensions, properties, account, resource)
    if (added === 'opened') {
      if (queue.full(lines.open.length, lines.openBytes)) schedule.wake(0)
    } else if (added === 'dropped') drop(amount, closed)
  }

  return {
    record,
    unreported: local.unreported,

    /**
     * Takes back what this writer's key holds (an earlier run's journal, where the storage is one process's), and
     * sends it soon. Resolves to what it recorded as granted per cap counter.
     */
    async restore(): Promise<Readonly<Record<string, number>> | undefined> {
      const granted = await persistence.restore(around.journal.key, read)
      if (granted !== undefined && pending() > 0) schedule.wake(0)
      return granted
    },

    /**
     * Takes over the journal a gone writer left under `key`: its lines are sent from here, with their ids, and it
     * is written down under this writer's key at once. Returns what it recorded as granted per cap counter.
     */
    adopt(key: string, text: string): Readonly<Record<string, number>> | undefined {
      const granted = persistence.adopt(key, text, read)
      persistence.now()
      if (pending() > 0) schedule.wake(0)
      return granted
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
        if (deadlineMs > 0) await sendBefore(deadlineMs, platform, sender, schedule, pending)
        closed = true
        sender.stop()
        persistence.stop()
      }
      return { sent: stats.sent - before, persisted: persistence.now(), dropped: stats.dropped }
    },

    stats(): UsageStats {
      return { ...stats, pending: pending(), setAside: setAside.lines().length }
    },

    setAside: (): readonly UsageLine[] => setAside.view(),

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
