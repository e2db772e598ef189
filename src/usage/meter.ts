import { EntitlementError } from '../errors.js'
import { createAggregator, sumInto } from './aggregator.js'
import { JOURNAL_KEY, readJournal, writeJournal } from './journal.js'
import { createIdGenerator, sealLine } from './line.js'
import { createLocalUsage } from './local-usage.js'
import { createSender } from './sender.js'
import {
  type CloseResult,
  type FlushResult,
  type MeterHost,
  NO_USAGE_STATS,
  type UsageLine,
  type UsageOptions,
  type UsageStats,
} from './types.js'

/**
 * The batched usage reporter: sums records in memory (`aggregator.ts`), keeps the local counts checks read
 * (`local-usage.ts`), sends batches with stable ids so a retry is counted once (`sender.ts`), and journals what is
 * unconfirmed so a restart loses at most `persistIntervalMs` (`journal.ts`). Protocol and guarantees:
 * `docs/metering.md`.
 */
export function createUsageMeter(options: UsageOptions, host: MeterHost) {
  const { platform } = host
  const flushIntervalMs = options.flushIntervalMs ?? 5000
  const maxQueuedLines = options.maxQueuedLines ?? 10_000
  const persistIntervalMs = options.persistIntervalMs ?? 1000
  const nextId = createIdGenerator()

  const { pending: _pending, setAside: _setAside, ...zero } = NO_USAGE_STATS
  const stats: { -readonly [K in keyof typeof zero]: (typeof zero)[K] } = { ...zero }
  const local = createLocalUsage()
  const { counters } = local
  const queued = () => lines.open.length + sender.queued()
  const raw = options.mode === 'raw'
  const lines = createAggregator({ raw, maxQueuedLines, nextId, queued, stats })
  const sender = createSender(
    {
      maxBatchLines: options.maxBatchLines ?? 1000,
      maxBatchBytes: options.maxBatchBytes ?? 262_144,
      maxInFlight: options.maxInFlight ?? 1,
      maxSetAsideLines: options.maxSetAsideLines ?? 1000,
      flushIntervalMs,
      backoff: { initialMs: options.backoff?.initialMs ?? 1000, maxMs: options.backoff?.maxMs ?? 60_000 },
    },
    {
      platform,
      send: host.send,
      background: host.background,
      local,
      stats,
      nextId,
      fail,
      collect,
      tick: (now) => local.prune(now, host.issuedAt),
      changed: () => {
        dirty = true
      },
      held: () => lines.open.length,
      armed: (armed) => {
        sendArmed = armed
      },
    },
  )
  let persistTimer: unknown
  /** Whether the sender's timer is set: read on every record, so mirrored here rather than asked for. */
  let sendArmed = false
  let dirty = false
  let closed = false
  let dropReported = 0

  function fail(error: EntitlementError): void {
    stats.lastError = error
    host.report(error)
  }

  /**
   * Seals every open line and queues it, or sets it aside when the protocol's rules would have the server refuse
   * it (a subject the wire cannot carry): checked once per line, never per record.
   */
  function collect(): void {
    const taken = lines.take()
    let refused = 0
    let first: string | undefined
    for (const line of taken) {
      const reason = sealLine(line, host.subjectOf(line.key))
      if (reason === undefined) {
        sender.enqueue(line)
        continue
      }
      sender.keepAside(line, reason)
      refused++
      first ??= reason
    }
    if (refused > 0)
      fail(
        new EntitlementError(
          'usage_rejected',
          `${refused} usage line(s) set aside unsent: the license server would refuse them (first: ${first})`,
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
      counter = local.counterFor(key, metric, host.windowFor(source, metric, now), now)
      counter.source = source
    }
    counter.pending += amount
    if (closed) {
      drop(amount)
      return
    }
    if (!sendArmed) sender.wake(flushIntervalMs)
    if (persistTimer === undefined) schedulePersist()
    dirty = true
    // The hot path: one more record for the customer's open plain line.
    if (!raw && dimensions === undefined && sumInto(counter.line, amount, now)) {
      stats.aggregated++
      return
    }
    const added = lines.add(counter, key, metric, amount, now, dimensions, properties)
    if (added === 'opened') {
      if (sender.full(lines.open.length, lines.openBytes)) sender.wake(0)
    } else if (added === 'dropped') drop(amount)
  }

  // --- persistence ---------------------------------------------------------------------------------------------

  function schedulePersist(): void {
    if (closed) return
    persistTimer = platform.setTimeout(() => {
      persistTimer = undefined
      persist()
      if (queued() > 0) schedulePersist()
    }, persistIntervalMs)
  }

  /** Writes the journal, when anything it holds changed; returns the lines not confirmed. */
  function persist(): number {
    if (!dirty) return queued()
    dirty = false
    const { text, unconfirmed } = writeJournal({
      ...sender.unconfirmed(),
      open: lines.open,
      confirmed: local.confirmedUnits(platform.now()),
    })
    host.write(JOURNAL_KEY, text)
    return unconfirmed
  }

  /** Takes back what an earlier run left (`journal.ts`); an unreadable journal is kept for a person. */
  async function restore(): Promise<void> {
    const text = await host.read(JOURNAL_KEY)
    if (text === undefined) return
    const read = readJournal(text, { now: platform.now(), local, sender, subjectOf: host.subjectOf })
    if (!read) {
      // Unreadable, yet it may be someone's invoice: kept under another key for a person to look at.
      host.write(`${JOURNAL_KEY}.unreadable`, text)
      fail(
        new EntitlementError(
          'storage_failed',
          `the usage journal is unreadable; kept as ${JOURNAL_KEY}.unreadable`,
        ),
      )
      return
    }
    if (queued() > 0) sender.wake(0)
  }

  // --- the meter -----------------------------------------------------------------------------------------------

  return {
    record,
    unreported: local.unreported,
    restore,

    /**
     * Sends everything queued now, ignoring any backoff, and resolves when it is confirmed, or when a batch failed
     * and what is left is persisted. With `keepalive` (a page being hidden), everything is persisted first and
     * then sent in `keepalive` requests within the browser's 64 KiB budget, without waiting for answers.
     */
    async flush(keepalive = false): Promise<FlushResult> {
      const before = stats.sent
      if (keepalive) {
        collect()
        dirty = true
        persist()
        await sender.flushKeepalive()
      } else await sender.flushNow()
      dirty = true
      const pending = persist()
      return { sent: stats.sent - before, pending }
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
        platform.clearTimeout(persistTimer)
        persistTimer = undefined
      }
      dirty = true
      const persisted = persist()
      return { sent: stats.sent - before, persisted, dropped: stats.dropped }
    },

    stats(): UsageStats {
      return { ...stats, pending: queued(), setAside: sender.setAside().length }
    },

    setAside(): readonly UsageLine[] {
      return sender.setAside().map((line) => ({
        ...(JSON.parse(line.json) as UsageLine),
        ...(line.reason === undefined ? {} : { reason: line.reason }),
      }))
    },

    /** Queues the set-aside lines again (same ids) after the cause was fixed. */
    resendSetAside: sender.resendSetAside,
  }
}

export type UsageMeter = ReturnType<typeof createUsageMeter>
