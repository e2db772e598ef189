import { EntitlementError } from '../errors.js'
import type { Platform } from '../platform.js'
import { createRetryState } from '../retry.js'
import type { Line } from './line.js'
import type { LocalUsage } from './local-usage.js'
import type { UsageResponse } from './types.js'

/** Browsers allow 64 KiB of keepalive bodies in flight per page, all requests together; leave room for headers. */
const KEEPALIVE_BUDGET = 60_000
/** A batch's JSON around its lines: `{"batch":"…","lines":[…]}` with an id of up to 40 characters. */
const BATCH_OVERHEAD = 64

/** A batch: sent again after a failure with the same id and the same lines, so the server can recognise it. */
export interface Batch {
  readonly id: string
  readonly lines: Line[]
}

export interface SenderOptions {
  readonly maxBatchLines: number
  readonly maxBatchBytes: number
  readonly maxInFlight: number
  readonly maxSetAsideLines: number
  readonly flushIntervalMs: number
  readonly backoff: { readonly initialMs: number; readonly maxMs: number }
}

function body(batch: Batch): string {
  let text = `{"batch":${JSON.stringify(batch.id)},"lines":[`
  for (let i = 0; i < batch.lines.length; i++) text += (i === 0 ? '' : ',') + batch.lines[i]!.json
  return `${text}]}`
}

const sizeOf = (lines: readonly Line[]) => lines.reduce((sum, line) => sum + line.bytes, BATCH_OVERHEAD)

/**
 * Sends sealed lines in batches: a failed batch goes back to the head of the queue as it was, retried through the
 * shared retry state (capped backoff, full jitter, `Retry-After`); a 413 splits it; lines the server refuses (one
 * by one, or a batch it could not read) are set aside with the reason, never dropped and never resent on their
 * own. Nothing here seals or records: lines arrive through `enqueue`.
 */
export function createSender(
  options: SenderOptions,
  host: {
    platform: Platform
    send(batchId: string, body: string, keepalive: boolean): Promise<UsageResponse>
    background(work: Promise<unknown>): void
    local: LocalUsage
    stats: { sent: number; retried: number; dropped: number; droppedUnits: number }
    nextId: () => string
    fail(error: EntitlementError): void
    /** Seals the open lines into the queue, so a batch takes everything recorded so far. */
    collect(): void
    /** Runs at every timer tick, before sending (the meter forgets what no check needs). */
    tick(now: number): void
    /** Something the journal holds changed. */
    changed(): void
    /** Lines held outside the sender (open lines), for the timer's decision to come back. */
    held(): number
    /** The send timer was armed (`true`) or has fired or stopped (`false`): the meter mirrors it for `record()`. */
    armed(armed: boolean): void
  },
) {
  const { platform, local, stats } = host
  /** Sealed lines waiting for a batch. */
  const waiting: Line[] = []
  /** Failed batches, sent again first, as they were. */
  const retries: Batch[] = []
  const flying = new Set<Batch>()
  let flyingLines = 0
  const setAside: Line[] = []
  const retry = createRetryState({ ...options.backoff, random: platform.random })
  let backoffUntil = 0
  /** Lines per batch: halved by a 413, doubled back by each success. */
  let batchLineLimit = options.maxBatchLines
  let workers = 0
  const running = new Set<Promise<void>>()
  let tickTimer: unknown
  let tickAt = Number.POSITIVE_INFINITY
  let stopped = false

  function queued(): number {
    let count = waiting.length + flyingLines
    for (const batch of retries) count += batch.lines.length
    return count
  }

  function keepAside(line: Line, reason: string): void {
    line.reason = reason
    // Refused units were not counted by the server: they still count locally until the window ends.
    local.release(line)
    if (setAside.length >= options.maxSetAsideLines) {
      stats.dropped++
      stats.droppedUnits += line.amount
      return
    }
    setAside.push(line)
  }

  /** The next batch: a failed one as it was (in pieces if a 413 asked for fewer lines), else waiting lines. */
  function nextBatch(maxBytes: number): Batch | undefined {
    const failed = retries[0]
    if (failed !== undefined) {
      retries.shift()
      if (failed.lines.length <= batchLineLimit) return failed
      const piece = Math.max(1, batchLineLimit)
      // Split from the back so the pieces keep their order at the front of the queue.
      for (let i = failed.lines.length; i > 0; i -= piece)
        retries.unshift({ id: host.nextId(), lines: failed.lines.slice(Math.max(0, i - piece), i) })
      return retries.shift()
    }
    host.collect()
    if (waiting.length === 0) return undefined
    let bytes = BATCH_OVERHEAD
    let count = 0
    while (count < waiting.length && count < batchLineLimit) {
      const size = waiting[count]!.bytes
      if (count > 0 && bytes + size > maxBytes) break
      bytes += size
      count++
    }
    return { id: host.nextId(), lines: waiting.splice(0, count) }
  }

  function confirm(batch: Batch, at: number, refused: ReadonlyArray<{ id: string; reason: string }>): void {
    const reasons = refused.length === 0 ? undefined : new Map(refused.map((line) => [line.id, line.reason]))
    for (const line of batch.lines) {
      const reason = reasons?.get(line.id)
      if (reason !== undefined) {
        keepAside(line, reason)
        continue
      }
      stats.sent++
      local.confirm(line, at)
    }
    if (reasons !== undefined) {
      const first = refused[0]!
      host.fail(
        new EntitlementError(
          'usage_rejected',
          `the license server refused ${refused.length} usage line(s), set aside (first: ${first.reason})`,
        ),
      )
    }
  }

  /** Sends one batch and acts on the answer. `true` when the next batch may follow at once. */
  async function deliver(batch: Batch, keepalive: boolean): Promise<boolean> {
    flying.add(batch)
    flyingLines += batch.lines.length
    let response: UsageResponse
    try {
      response = await host.send(batch.id, body(batch), keepalive)
    } finally {
      flying.delete(batch)
      flyingLines -= batch.lines.length
    }
    // The persist timer runs while anything is queued or in flight, so it also writes down this outcome.
    host.changed()
    const now = platform.now()
    switch (response.kind) {
      case 'ok':
        retry.recordSuccess(now)
        batchLineLimit = Math.min(options.maxBatchLines, batchLineLimit * 2)
        confirm(batch, response.at, response.refused)
        return true
      case 'too_large':
        if (batch.lines.length === 1) {
          keepAside(batch.lines[0]!, 'too large')
          host.fail(response.error)
          return true
        }
        batchLineLimit = Math.max(1, Math.floor(batch.lines.length / 2))
        retries.unshift(batch)
        return true
      case 'rejected':
        for (const line of batch.lines) keepAside(line, response.error.message)
        host.fail(response.error)
        return true
      case 'refused':
        // Credentials or the endpoint are wrong: asking again soon cannot help. Wait the longest backoff.
        retries.unshift(batch)
        retry.recordFailure(now)
        backoffUntil = now + options.backoff.maxMs
        wake(options.backoff.maxMs)
        host.fail(response.error)
        return false
      case 'retry': {
        retries.unshift(batch)
        stats.retried++
        const wait = retry.recordFailure(now, response.retryAfterMs)
        backoffUntil = now + wait
        wake(wait)
        host.fail(response.error)
        return false
      }
    }
  }

  async function worker(force: boolean): Promise<void> {
    workers++
    try {
      for (;;) {
        if (stopped || (!force && platform.now() < backoffUntil)) return
        const batch = nextBatch(options.maxBatchBytes)
        if (batch === undefined) return
        if (!(await deliver(batch, false))) return
      }
    } finally {
      workers--
    }
  }

  /** Starts senders up to `maxInFlight`; resolves when those it started stop. */
  function drain(force: boolean): Promise<void> {
    const started: Promise<void>[] = []
    for (let i = workers; i < options.maxInFlight; i++) {
      const run = worker(force).finally(() => running.delete(run))
      running.add(run)
      host.background(run)
      started.push(run)
    }
    return Promise.all(started).then(() => undefined)
  }

  /** Makes sure a send happens within `ms` (a sooner wake-up wins over a later one). */
  function wake(ms: number): void {
    if (stopped) return
    const at = platform.now() + ms
    if (tickTimer !== undefined && tickAt <= at) return
    platform.clearTimeout(tickTimer)
    const wasArmed = tickTimer !== undefined
    tickAt = at
    tickTimer = platform.setTimeout(tick, ms)
    if (!wasArmed) host.armed(true)
  }

  function tick(): void {
    tickTimer = undefined
    tickAt = Number.POSITIVE_INFINITY
    host.armed(false)
    if (stopped) return
    const now = platform.now()
    host.tick(now)
    if (now < backoffUntil) {
      wake(backoffUntil - now)
      return
    }
    void drain(false).then(() => {
      if (queued() + host.held() > 0 && !stopped)
        wake(Math.max(0, backoffUntil - platform.now(), options.flushIntervalMs))
    })
  }

  return {
    enqueue(line: Line): void {
      waiting.push(line)
    },
    keepAside,
    /** Lines waiting, retried and in flight. */
    queued,
    /** Whether open lines and waiting ones fill a batch, so it should go now. */
    full: (openLines: number, openBytes: number) =>
      openLines + waiting.length >= batchLineLimit || openBytes >= options.maxBatchBytes,
    wake,

    /** Sends everything queued now, ignoring any backoff; resolves when it is confirmed or a batch failed. */
    async flushNow(): Promise<void> {
      await Promise.allSettled([...running])
      await drain(true)
    },

    /**
     * Sends what fits in the browser's keepalive budget, without waiting for the answers to matter: a page being
     * hidden may never see them, so the caller persists first.
     */
    async flushKeepalive(): Promise<void> {
      let budget = KEEPALIVE_BUDGET
      const sends: Promise<boolean>[] = []
      for (;;) {
        const batch = nextBatch(Math.min(budget, options.maxBatchBytes))
        if (batch === undefined) break
        const size = sizeOf(batch.lines)
        if (size > budget) {
          retries.unshift(batch)
          break
        }
        budget -= size
        sends.push(deliver(batch, true))
      }
      await Promise.allSettled(sends)
    },

    /** Stops the timer; nothing is sent from here on. */
    stop(): void {
      stopped = true
      platform.clearTimeout(tickTimer)
      tickTimer = undefined
      host.armed(false)
    },

    /** What the journal keeps: every line not confirmed, with the batch it went in, and the set-aside ones. */
    unconfirmed(): { batches: Batch[]; waiting: readonly Line[]; setAside: readonly Line[] } {
      return { batches: [...retries, ...flying], waiting, setAside }
    },
    /** Puts back a batch from the journal, to be sent first, as it was. */
    restoreBatch(batch: Batch): void {
      retries.push(batch)
    },
    restoreSetAside(line: Line): void {
      setAside.push(line)
    },

    setAside: (): readonly Line[] => setAside,
    /** Queues the set-aside lines again (same ids) after the cause was fixed. */
    resendSetAside(): number {
      const lines = setAside.splice(0)
      for (const line of lines) {
        line.reason = undefined
        waiting.push(line)
      }
      if (lines.length > 0) {
        host.changed()
        wake(0)
      }
      return lines.length
    },
  }
}

export type Sender = ReturnType<typeof createSender>
