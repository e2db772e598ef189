import { EntitlementError } from '../core/errors.js'
import type { Platform } from '../platform/platform.js'
import type { UsageResponse } from '../transport/usage-response.js'
import { type Batch, type BatchQueue, batchBody } from './batch-queue.js'
import type { Line } from './line.js'
import type { SendSchedule } from './send-schedule.js'
import type { SetAside } from './set-aside.js'

/** Browsers allow 64 KiB of keepalive bodies in flight per page, all requests together; leave room for headers. */
const KEEPALIVE_BUDGET = 60_000

/**
 * The server stored the batch: each line is acknowledged, but those it refused one by one (`refused`), which are set
 * aside with the reason, and reported once.
 */
function stored(
  batch: Batch,
  at: number,
  refused: ReadonlyArray<{ id: string; reason: string }>,
  setAside: SetAside,
  outcome: { acknowledged: (line: Line, at: number) => void; fail: (error: EntitlementError) => void },
): void {
  const reasons = refused.length === 0 ? undefined : new Map(refused.map((line) => [line.id, line.reason]))
  for (const line of batch.lines) {
    const reason = reasons?.get(line.id)
    if (reason !== undefined) setAside.add(line, reason)
    else outcome.acknowledged(line, at)
  }
  if (reasons === undefined) return
  outcome.fail(
    new EntitlementError(
      'usage_rejected',
      `the license server refused ${refused.length} usage line(s), set aside (first: ${refused[0]!.reason})`,
    ),
  )
}

/**
 * Delivers batches from the queue, up to `maxInFlight` at once, and acts on each answer: a delivered batch's lines
 * are acknowledged (or set aside one by one where the server refused them), a batch that may not have arrived goes
 * back to the head of the queue as it was and the schedule backs off, a 413 splits it, a batch the server could not
 * read is set aside whole. Nothing here seals, records or times: lines come from the queue, wake-ups from the
 * schedule.
 */
export function createSender(parts: {
  readonly platform: Platform
  readonly maxInFlight: number
  readonly queue: BatchQueue
  readonly setAside: SetAside
  readonly schedule: SendSchedule
  /** Sends one batch; never throws. */
  readonly send: (batchId: string, body: string, keepalive: boolean) => Promise<UsageResponse>
  readonly background: (work: Promise<unknown>) => void
  /** Seals what is open into the queue, so a batch takes everything recorded so far. */
  readonly sealOpenLines: () => void
  /** The server stored `line` at `at`. */
  readonly acknowledged: (line: Line, at: number) => void
  /** A batch goes again after a failure. */
  readonly retried: () => void
  /** What the journal holds changed (a batch went out or came back). */
  readonly journalChanged: () => void
  readonly fail: (error: EntitlementError) => void
}) {
  const { platform, queue, setAside, schedule } = parts
  const flying = new Set<Batch>()
  let flyingLines = 0
  let workers = 0
  const running = new Set<Promise<void>>()
  let stopped = false

  /** The next batch to send: a failed one first, else one of everything recorded so far. */
  function nextBatch(): Batch | undefined {
    if (!queue.hasFailed()) parts.sealOpenLines()
    return queue.next()
  }

  /** What the answer means for the batch; `true` when the next batch may follow at once. */
  function settle(batch: Batch, response: UsageResponse): boolean {
    const now = platform.now()
    switch (response.kind) {
      case 'ok':
        schedule.delivered(now)
        queue.delivered()
        stored(batch, response.at, response.refused, setAside, parts)
        return true
      case 'too_large':
        if (batch.lines.length === 1) {
          setAside.add(batch.lines[0]!, 'too large')
          parts.fail(response.error)
        } else queue.tooLarge(batch)
        return true
      case 'rejected':
        for (const line of batch.lines) setAside.add(line, response.error.message)
        parts.fail(response.error)
        return true
      case 'refused':
        queue.putBack(batch)
        schedule.refused(now)
        parts.fail(response.error)
        return false
      case 'retry':
        queue.putBack(batch)
        parts.retried()
        schedule.failed(now, response.retryAfterMs)
        parts.fail(response.error)
        return false
    }
  }

  /** Sends one batch and acts on the answer. `true` when the next batch may follow at once. */
  async function deliver(batch: Batch, keepalive: boolean): Promise<boolean> {
    flying.add(batch)
    flyingLines += batch.lines.length
    let response: UsageResponse
    try {
      response = await parts.send(batch.id, batchBody(batch), keepalive)
    } finally {
      flying.delete(batch)
      flyingLines -= batch.lines.length
    }
    parts.journalChanged()
    return settle(batch, response)
  }

  async function worker(force: boolean): Promise<void> {
    workers++
    try {
      for (;;) {
        if (stopped || (!force && schedule.holding(platform.now()))) return
        const batch = nextBatch()
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
    for (let i = workers; i < parts.maxInFlight; i++) {
      const run = worker(force).finally(() => running.delete(run))
      running.add(run)
      parts.background(run)
      started.push(run)
    }
    return Promise.all(started).then(() => undefined)
  }

  return {
    /** Sends what is queued, unless a backoff holds (the schedule's wake-up). */
    drain: () => drain(false),

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
      await Promise.allSettled(queue.within(KEEPALIVE_BUDGET).map((batch) => deliver(batch, true)))
    },

    /** Lines queued or in flight. */
    pending: () => queue.size + flyingLines,
    /** Batches in flight: not confirmed, so the journal keeps them, with their ids. */
    inFlight: (): readonly Batch[] => [...flying],

    /** Stops sending; what is queued stays queued. */
    stop(): void {
      stopped = true
      schedule.stop()
    },
  }
}

export type Sender = ReturnType<typeof createSender>
