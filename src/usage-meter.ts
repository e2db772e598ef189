import { EntitlementError } from './errors.js'
import type { UsageResponse } from './license-server.js'
import type { Platform } from './platform.js'
import { createRetryState } from './retry.js'

/** Options of the usage meter: `usage` in `createEntitlements` options. Every default is in `docs/metering.md`. */
export interface UsageOptions {
  /** Where usage goes (`POST {url}/v1/usage`). Default: the `server` of the client. */
  url?: string | URL
  /** Sent as `Authorization: Bearer …`. Default: the server's `apiKey`. */
  apiKey?: string
  /** Extra headers for every usage request. Default: the server's `headers`. */
  headers?: Record<string, string>
  /** Abort a usage request after this long. Default 10 000 ms. */
  timeoutMs?: number
  /**
   * `'aggregate'` (default) sums records of the same customer, metric, window and dimensions into one line;
   * `'raw'` sends every record as its own line, with its time and properties, for audit trails.
   */
  mode?: 'aggregate' | 'raw'
  /** Send what is queued at least this often. Default 5 000 ms. */
  flushIntervalMs?: number
  /** At most this many lines in one batch; a full batch is sent at once. Default 1 000. */
  maxBatchLines?: number
  /** At most this many bytes of JSON in one batch; a full batch is sent at once. Default 262 144. */
  maxBatchBytes?: number
  /** Batches in flight at once. Default 1. */
  maxInFlight?: number
  /**
   * At most this many lines are held (open, queued, in flight). Past 90% of it, records with dimensions or in raw
   * mode fold into their customer's plain line for the metric; past all of it, new lines are dropped and counted.
   * Default 10 000.
   */
  maxQueuedLines?: number
  /** At most this many lines the server refused are kept aside for the app. Default 1 000. */
  maxSetAsideLines?: number
  /** Unsent usage is written to storage at most this long after it was recorded. Default 1 000 ms. */
  persistIntervalMs?: number
  /** Retry delays after a failed batch (full jitter). Default `{ initialMs: 1 000, maxMs: 60 000 }`. */
  backoff?: { initialMs?: number; maxMs?: number }
}

/** One usage line as it goes on the wire (protocol v1, `POST v1/usage`) and as `setAsideUsage()` returns it. */
export interface UsageLine {
  /** Stable across retries and restarts: the server counts each id once. */
  readonly id: string
  /** The customer; absent when a single-tenant client has no token yet (the server uses the credential's). */
  readonly subject?: string
  readonly metric: string
  readonly amount: number
  /** The first and the last record summed into this line, epoch milliseconds; one window never spans two. */
  readonly start: number
  readonly end: number
  readonly dimensions?: Readonly<Record<string, string>>
  /** Raw mode: the record's own properties. */
  readonly properties?: Readonly<Record<string, unknown>>
  /** Set-aside lines: why the server refused them. */
  readonly reason?: string
}

/** What `flush()` achieved. */
export interface FlushResult {
  /** Lines the server confirmed during this flush. */
  readonly sent: number
  /** Lines still queued (the server could not be reached, or a batch is backing off); they are persisted. */
  readonly pending: number
}

/** What `close()` achieved: nothing is thrown, every line is accounted for. */
export interface CloseResult {
  /** Lines the server confirmed during close. */
  readonly sent: number
  /** Lines left unsent at the deadline or in an outage, written to storage for the next start. */
  readonly persisted: number
  /** Records dropped since the client started (queue full, or recorded after close). */
  readonly dropped: number
}

/** Counters of the usage meter. */
export interface UsageStats {
  /** `record()` calls counted. */
  readonly recorded: number
  /** Records summed into a line that already existed. */
  readonly aggregated: number
  /** Lines the server confirmed. */
  readonly sent: number
  /** Batches sent again after a failure. */
  readonly retried: number
  /** Records dropped: the queue was full even after aggregating harder, or the client was closed. */
  readonly dropped: number
  /** Units in the dropped records. */
  readonly droppedUnits: number
  /** Lines waiting to be sent (open, queued, in flight). */
  readonly pending: number
  /** Lines the server refused, kept aside. */
  readonly setAside: number
  /** The last error, if any. */
  readonly lastError: EntitlementError | undefined
}

/** What the meter needs from the client around it. */
export interface MeterHost {
  readonly platform: Platform
  /** Sends one batch; never throws. */
  send(batchId: string, body: string, keepalive: boolean): Promise<UsageResponse>
  /** The customer a cache key stands for on the wire (the single-tenant key resolves to its token's subject). */
  subjectOf(key: string): string | undefined
  /**
   * The end of the usage window `metric` is in at `now`, given `source` (what the host knows about the customer:
   * the client passes its cache entry). Asked only when `source` changed or the last window ended.
   */
  windowFor(source: unknown, metric: string, now: number): number
  /** When the token in memory for a cache key was issued (epoch ms), if one is there. */
  issuedAt(key: string): number | undefined
  /** Reads the journal. */
  read(key: string): Promise<string | undefined>
  /** Writes the journal (serialized per key by the host; awaited by its `close()`). */
  write(key: string, value: string): void
  /** Reports a background failure. */
  report(error: EntitlementError): void
  /** Hands background work to the platform (`waitUntil`) without an unobserved rejection. */
  background(work: Promise<unknown>): void
}

/** The stats of a meter that has recorded nothing (and of a client that has no meter). */
export const NO_USAGE_STATS: UsageStats = /*@__PURE__*/ Object.freeze({
  recorded: 0,
  aggregated: 0,
  sent: 0,
  retried: 0,
  dropped: 0,
  droppedUnits: 0,
  pending: 0,
  setAside: 0,
  lastError: undefined,
})

/** A window that never ends: metrics without a resetting cap (`total`). */
export const NEVER = Number.MAX_SAFE_INTEGER

const JOURNAL_KEY = 'entitle:usage'
/** Browsers allow 64 KiB of keepalive bodies in flight per page, all requests together; leave room for headers. */
const KEEPALIVE_BUDGET = 60_000
/** Counters that no longer matter are forgotten at most this often. */
const PRUNE_INTERVAL_MS = 60_000
/** A batch's JSON around its lines: `{"batch":"…","lines":[…]}` with an id of up to 40 characters. */
const BATCH_OVERHEAD = 64
const MAX_DIMENSIONS = 16
const MAX_PROPERTIES_BYTES = 4096
const encoder = /*@__PURE__*/ new TextEncoder()

interface Line {
  readonly id: string
  readonly key: string
  readonly metric: string
  amount: number
  readonly start: number
  end: number
  readonly windowEnd: number
  readonly dimensions: Record<string, string> | undefined
  readonly properties: Record<string, unknown> | undefined
  /** Sealed lines take no more records: their id may already have reached the server with this amount. */
  sealed: boolean
  /** The counter generation this line counted into (for the local overlay), or -1. */
  generation: number
  /** The wire JSON and its UTF-8 size, fixed at sealing. */
  json: string
  bytes: number
  reason: string | undefined
}

/** A failed batch: sent again with the same id and the same lines, so the server can recognise it. */
interface Batch {
  readonly id: string
  readonly lines: Line[]
}

/** Local usage of one customer and metric in its current window, for checks (`unreported`). */
interface Counter {
  windowEnd: number
  /** What `windowEnd` was worked out from: while it is the same and the window lasts, no need to ask again. */
  source: unknown
  generation: number
  /** Units recorded in this window that the server has not confirmed. */
  pending: number
  /** Confirmed units as pairs [server time, units]: counted until a token issued after that time arrives. */
  acked: number[]
  /** The open line without dimensions (aggregate mode). */
  line: Line | undefined
  byDimensions: Map<string, Line> | undefined
}

interface JournalLine {
  id: string
  key: string
  metric: string
  amount: number
  start: number
  end: number
  window: number
  dimensions?: Record<string, string>
  properties?: Record<string, unknown>
  batch?: string
  reason?: string
}

/** Confirmed units of one counter, as [server time, units] pairs, that no token counted yet at the last write. */
interface JournalConfirmed {
  key: string
  metric: string
  window: number
  acked: number[]
}

function isJournalConfirmed(value: unknown): value is JournalConfirmed {
  const entry = value as JournalConfirmed
  return (
    typeof entry === 'object' &&
    entry !== null &&
    typeof entry.key === 'string' &&
    typeof entry.metric === 'string' &&
    typeof entry.window === 'number' &&
    Array.isArray(entry.acked) &&
    entry.acked.length % 2 === 0 &&
    entry.acked.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0)
  )
}

/** The smallest validity check a journal line needs before it is trusted with money. */
function isJournalLine(value: unknown): value is JournalLine {
  const line = value as JournalLine
  return (
    typeof line === 'object' &&
    line !== null &&
    typeof line.id === 'string' &&
    typeof line.key === 'string' &&
    typeof line.metric === 'string' &&
    typeof line.amount === 'number' &&
    Number.isFinite(line.amount) &&
    line.amount >= 0 &&
    typeof line.start === 'number' &&
    typeof line.end === 'number' &&
    typeof line.window === 'number'
  )
}

/** A random prefix per meter and a counter: unique ids for a few nanoseconds each, in any runtime. */
function idGenerator(): () => string {
  const bytes = crypto.getRandomValues(new Uint8Array(12))
  let prefix = ''
  for (const byte of bytes) prefix += byte.toString(16).padStart(2, '0')
  let sequence = 0
  return () => `${prefix}-${(++sequence).toString(36)}`
}

/** A stable key for a set of dimensions: sorted names, so `{a, b}` and `{b, a}` aggregate together. */
function dimensionsKey(dimensions: Record<string, string>): string {
  const names = Object.keys(dimensions).sort()
  let key = ''
  for (const name of names) key += `${name}\u0000${dimensions[name]}\u0001`
  return key
}

/** Checks what a record carries besides the amount; throws `usage_invalid`, counting nothing. */
export function validateRecordExtras(
  dimensions: unknown,
  properties: unknown,
): { dimensions: Record<string, string> | undefined; properties: Record<string, unknown> | undefined } {
  let cleanDimensions: Record<string, string> | undefined
  if (dimensions !== undefined) {
    if (typeof dimensions !== 'object' || dimensions === null || Array.isArray(dimensions))
      throw new EntitlementError('usage_invalid', 'dimensions must be an object of strings')
    const names = Object.keys(dimensions)
    if (names.length > MAX_DIMENSIONS)
      throw new EntitlementError('usage_invalid', `at most ${MAX_DIMENSIONS} dimensions`)
    // A null-prototype copy: a dimension named __proto__ stays a dimension.
    cleanDimensions = Object.create(null) as Record<string, string>
    for (const name of names) {
      const value = (dimensions as Record<string, unknown>)[name]
      if (typeof value !== 'string')
        throw new EntitlementError('usage_invalid', `dimension ${name} must be a string`)
      cleanDimensions[name] = value
    }
    if (names.length === 0) cleanDimensions = undefined
  }
  let cleanProperties: Record<string, unknown> | undefined
  if (properties !== undefined) {
    let json: string | undefined
    try {
      json = JSON.stringify(properties)
    } catch {
      json = undefined
    }
    if (
      json === undefined ||
      typeof properties !== 'object' ||
      properties === null ||
      Array.isArray(properties) ||
      encoder.encode(json).length > MAX_PROPERTIES_BYTES
    ) {
      throw new EntitlementError(
        'usage_invalid',
        `properties must be a JSON object of at most ${MAX_PROPERTIES_BYTES} bytes`,
      )
    }
    // Copied through JSON: a later change to the app's object cannot change a queued line.
    cleanProperties = JSON.parse(json) as Record<string, unknown>
  }
  return { dimensions: cleanDimensions, properties: cleanProperties }
}

/**
 * The batched usage reporter: sums records in memory, sends them in batches with stable ids (so a retry is
 * counted once), retries with backoff, keeps refused lines aside, bounds its memory, and journals what is unsent
 * so a restart loses at most `persistIntervalMs`. It also keeps the local usage per customer and metric that
 * checks add to the token's snapshot. Protocol and guarantees: `docs/metering.md`.
 */
export function createUsageMeter(options: UsageOptions, host: MeterHost) {
  const { platform } = host
  const raw = options.mode === 'raw'
  const flushIntervalMs = options.flushIntervalMs ?? 5000
  const maxBatchLines = options.maxBatchLines ?? 1000
  const maxBatchBytes = options.maxBatchBytes ?? 262_144
  const maxInFlight = options.maxInFlight ?? 1
  const maxQueued = options.maxQueuedLines ?? 10_000
  const maxFine = Math.floor(maxQueued * 0.9)
  const maxSetAside = options.maxSetAsideLines ?? 1000
  const persistIntervalMs = options.persistIntervalMs ?? 1000
  const backoff = { initialMs: options.backoff?.initialMs ?? 1000, maxMs: options.backoff?.maxMs ?? 60_000 }
  const nextId = idGenerator()

  const counters = new Map<string, Map<string, Counter>>()
  /** Global, so a line never matches a counter that was forgotten and made again. */
  let generations = 0
  /** Lines taking records. */
  let open: Line[] = []
  /** Sealed lines waiting for a batch. */
  const ready: Line[] = []
  /** Failed batches, sent again first, as they were. */
  const retries: Batch[] = []
  const flying = new Set<Batch>()
  let flyingLines = 0
  const setAside: Line[] = []
  let openBytes = 0

  const { pending: _pending, setAside: _setAside, ...zero } = NO_USAGE_STATS
  const stats: { -readonly [K in keyof typeof zero]: (typeof zero)[K] } = { ...zero }
  const retry = createRetryState({ ...backoff, random: platform.random })
  let backoffUntil = 0
  let lineLimit = maxBatchLines
  let workers = 0
  const running = new Set<Promise<void>>()
  let tickTimer: unknown
  let tickAt = Number.POSITIVE_INFINITY
  let persistTimer: unknown
  let dirty = false
  let closed = false
  let dropReported = 0

  const queued = () => open.length + ready.length + retryLines() + flyingLines
  function retryLines(): number {
    let count = 0
    for (const batch of retries) count += batch.lines.length
    return count
  }

  function fail(error: EntitlementError): void {
    stats.lastError = error
    host.report(error)
  }

  // --- recording -----------------------------------------------------------------------------------------------

  function counterFor(key: string, metric: string, windowEnd: number, now: number): Counter {
    let metrics = counters.get(key)
    if (metrics === undefined) {
      metrics = new Map()
      counters.set(key, metrics)
    }
    let counter = metrics.get(metric)
    if (counter === undefined) {
      counter = {
        windowEnd,
        source: undefined,
        generation: ++generations,
        pending: 0,
        acked: [],
        line: undefined,
        byDimensions: undefined,
      }
      metrics.set(metric, counter)
    } else if (counter.windowEnd !== windowEnd) {
      // A new window: what was counted belongs to the last one. A window that has not ended yet (the token's cap
      // became known after the first records) keeps its count.
      if (counter.windowEnd <= now) {
        counter.generation = ++generations
        counter.pending = 0
        counter.acked.length = 0
      }
      counter.windowEnd = windowEnd
      counter.line = undefined
      counter.byDimensions = undefined
    }
    return counter
  }

  function newLine(
    key: string,
    metric: string,
    amount: number,
    now: number,
    windowEnd: number,
    counter: Counter,
    dimensions: Record<string, string> | undefined,
    properties: Record<string, unknown> | undefined,
  ): Line {
    const line: Line = {
      id: nextId(),
      key,
      metric,
      amount,
      start: now,
      end: now,
      windowEnd,
      dimensions,
      properties,
      sealed: false,
      generation: counter.generation,
      json: '',
      bytes: 0,
      reason: undefined,
    }
    open.push(line)
    // An estimate: the exact size is measured when the line is sealed.
    openBytes += 160 + key.length + metric.length + (dimensions || properties ? 256 : 0)
    dirty = true
    if (open.length + ready.length >= lineLimit || openBytes >= maxBatchBytes) wake(0)
    return line
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
            : `the usage queue is full (${maxQueued} lines): records are being dropped`,
        ),
      )
    }
  }

  /**
   * Counts `amount` of `metric` for the customer `key` in the window ending at `windowEnd`. Synchronous and O(1):
   * in aggregate mode, a record for a line that exists is two Map lookups and two additions.
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
      counter = counterFor(key, metric, host.windowFor(source, metric, now), now)
      counter.source = source
    }
    const windowEnd = counter.windowEnd
    counter.pending += amount
    if (closed) {
      drop(amount)
      return
    }
    if (tickTimer === undefined) wake(flushIntervalMs)
    if (persistTimer === undefined) schedulePersist()
    dirty = true

    if (raw || dimensions !== undefined) {
      if (queued() < maxFine) {
        if (raw) {
          newLine(key, metric, amount, now, windowEnd, counter, dimensions, properties)
          return
        }
        const dimensionKey = dimensionsKey(dimensions!)
        counter.byDimensions ??= new Map()
        const line = counter.byDimensions.get(dimensionKey)
        if (line !== undefined && !line.sealed) {
          line.amount += amount
          line.end = now
          stats.aggregated++
          return
        }
        const made = newLine(key, metric, amount, now, windowEnd, counter, dimensions, undefined)
        counter.byDimensions.set(dimensionKey, made)
        return
      }
      // Aggregate harder: the detail goes, the units stay, in the customer's plain line for this metric.
    }
    const line = counter.line
    if (line !== undefined && !line.sealed) {
      line.amount += amount
      line.end = now
      stats.aggregated++
      return
    }
    if (queued() >= maxQueued) {
      drop(amount)
      return
    }
    counter.line = newLine(key, metric, amount, now, windowEnd, counter, undefined, undefined)
  }

  /**
   * Units of `metric` the customer used in the current window that a usage snapshot taken at `snapshotAt` (the
   * cap's `asOf`, else the token's `iat`) does not count yet: unconfirmed records, and confirmed ones the server
   * stored at or after that moment.
   */
  function unreported(key: string, metric: string, now: number, snapshotAt: number): number {
    const counter = counters.get(key)?.get(metric)
    if (counter === undefined || counter.windowEnd <= now) return 0
    let units = counter.pending
    const acked = counter.acked
    if (acked.length === 0) return units
    // The server stored these before the token was signed: its snapshot has them. Tokens only get newer.
    let stale = 0
    while (stale < acked.length && acked[stale]! < snapshotAt) stale += 2
    if (stale > 0) acked.splice(0, stale)
    for (let i = 1; i < acked.length; i += 2) units += acked[i]!
    return units
  }

  // --- sending -------------------------------------------------------------------------------------------------

  function wireLine(line: Line): string {
    const subject = host.subjectOf(line.key)
    return JSON.stringify({
      id: line.id,
      subject,
      metric: line.metric,
      amount: line.amount,
      start: line.start,
      end: line.end,
      dimensions: line.dimensions,
      properties: line.properties,
    })
  }

  function seal(line: Line): void {
    line.sealed = true
    line.json = wireLine(line)
    line.bytes = encoder.encode(line.json).length + 1
  }

  /** Seals every open line: from here on their ids and amounts are fixed. */
  function sealOpen(): void {
    if (open.length === 0) return
    for (const line of open) {
      seal(line)
      ready.push(line)
    }
    open = []
    openBytes = 0
  }

  /** The next batch: a failed one as it was (split if a 413 asked for less), else fresh lines up to the limits. */
  function nextBatch(maxBytes: number): Batch | undefined {
    const retry = retries[0]
    if (retry !== undefined) {
      if (retry.lines.length <= lineLimit) {
        retries.shift()
        return retry
      }
      retries.shift()
      const half = Math.max(1, lineLimit)
      for (let i = retry.lines.length; i > 0; i -= half) {
        // Split from the back so the pieces keep their order at the front of the queue.
        const from = Math.max(0, i - half)
        retries.unshift({ id: nextId(), lines: retry.lines.slice(from, i) })
      }
      return retries.shift()
    }
    sealOpen()
    if (ready.length === 0) return undefined
    let bytes = BATCH_OVERHEAD
    let count = 0
    while (count < ready.length && count < lineLimit) {
      const size = ready[count]!.bytes
      if (count > 0 && bytes + size > maxBytes) break
      bytes += size
      count++
    }
    return { id: nextId(), lines: ready.splice(0, count) }
  }

  function body(batch: Batch): string {
    let text = `{"batch":${JSON.stringify(batch.id)},"lines":[`
    for (let i = 0; i < batch.lines.length; i++) text += (i === 0 ? '' : ',') + batch.lines[i]!.json
    return `${text}]}`
  }

  function confirm(batch: Batch, at: number, refused: ReadonlyArray<{ id: string; reason?: string }>): void {
    const refusedIds = refused.length === 0 ? undefined : new Map(refused.map((r) => [r.id, r.reason]))
    for (const line of batch.lines) {
      if (refusedIds?.has(line.id)) {
        line.reason = refusedIds.get(line.id) ?? 'refused'
        keepAside(line)
        continue
      }
      stats.sent++
      const counter = counters.get(line.key)?.get(line.metric)
      if (counter === undefined || counter.generation !== line.generation) continue
      counter.pending = Math.max(0, counter.pending - line.amount)
      // Pairs in arrival order; confirmations within the same second merge into one pair.
      const acked = counter.acked
      const last = acked.length - 2
      // Merged pairs take the later time: a snapshot between the two must not hide the later units.
      if (last >= 0 && Math.floor(acked[last]! / 1000) === Math.floor(at / 1000)) {
        acked[last + 1]! += line.amount
        acked[last] = Math.max(acked[last]!, at)
      } else acked.push(at, line.amount)
    }
    if (refusedIds !== undefined) {
      fail(
        new EntitlementError('usage_rejected', `the license server refused ${refused.length} usage line(s)`),
      )
    }
    dirty = true
  }

  function keepAside(line: Line): void {
    const counter = counters.get(line.key)?.get(line.metric)
    // Refused units were not counted by the server: they still count locally until the window ends.
    if (counter !== undefined && counter.generation === line.generation) line.generation = -1
    if (setAside.length >= maxSetAside) {
      stats.dropped++
      stats.droppedUnits += line.amount
      return
    }
    setAside.push(line)
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
    dirty = true
    switch (response.kind) {
      case 'ok':
        retry.recordSuccess(platform.now())
        lineLimit = Math.min(maxBatchLines, lineLimit * 2)
        confirm(batch, response.at, response.rejected)
        return true
      case 'too_large':
        if (batch.lines.length === 1) {
          batch.lines[0]!.reason = 'too large'
          keepAside(batch.lines[0]!)
          fail(response.error)
          return true
        }
        lineLimit = Math.max(1, Math.floor(batch.lines.length / 2))
        retries.unshift(batch)
        return true
      case 'rejected':
        for (const line of batch.lines) {
          line.reason = response.error.message
          keepAside(line)
        }
        fail(response.error)
        return true
      case 'refused':
        // Credentials or the endpoint are wrong: asking again soon cannot help. Wait the longest backoff.
        retries.unshift(batch)
        retry.recordFailure(platform.now())
        backoffUntil = platform.now() + backoff.maxMs
        wake(backoff.maxMs)
        fail(response.error)
        return false
      case 'retry': {
        retries.unshift(batch)
        stats.retried++
        const wait = retry.recordFailure(platform.now(), response.retryAfterMs)
        backoffUntil = platform.now() + wait
        wake(wait)
        fail(response.error)
        return false
      }
    }
  }

  async function worker(force: boolean): Promise<void> {
    workers++
    try {
      for (;;) {
        if (closed || (!force && platform.now() < backoffUntil)) return
        const batch = nextBatch(maxBatchBytes)
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
    for (let i = workers; i < maxInFlight; i++) {
      const run = worker(force).finally(() => running.delete(run))
      running.add(run)
      host.background(run)
      started.push(run)
    }
    return Promise.all(started).then(() => undefined)
  }

  /** Makes sure a send happens within `ms` (a sooner wake-up wins over a later one). */
  function wake(ms: number): void {
    if (closed) return
    const at = platform.now() + ms
    if (tickTimer !== undefined && tickAt <= at) return
    platform.clearTimeout(tickTimer)
    tickAt = at
    tickTimer = platform.setTimeout(tick, ms)
  }

  /**
   * Forgets local counts no check needs any more: windows that ended, and confirmed units a newer token counts.
   * This bounds the counters by the customers and metrics with usage still in flight or not yet in a token.
   */
  let prunedAt = 0
  function prune(now: number): void {
    if (now < prunedAt + PRUNE_INTERVAL_MS) return
    prunedAt = now
    for (const [key, metrics] of counters) {
      const issuedAt = host.issuedAt(key)
      for (const [metric, counter] of metrics) {
        if (issuedAt !== undefined) unreported(key, metric, now, issuedAt)
        const openLine =
          (counter.line !== undefined && !counter.line.sealed) ||
          (counter.byDimensions !== undefined && [...counter.byDimensions.values()].some((l) => !l.sealed))
        if (openLine) continue
        if (counter.windowEnd <= now || (counter.pending === 0 && counter.acked.length === 0))
          metrics.delete(metric)
      }
      if (metrics.size === 0) counters.delete(key)
    }
  }

  function tick(): void {
    tickTimer = undefined
    tickAt = Number.POSITIVE_INFINITY
    if (closed) return
    prune(platform.now())
    if (platform.now() < backoffUntil) {
      wake(backoffUntil - platform.now())
      return
    }
    void drain(false).then(() => {
      if (queued() > 0 && !closed) wake(Math.max(0, backoffUntil - platform.now(), flushIntervalMs))
    })
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

  function journalLine(line: Line, batch?: string): JournalLine {
    return {
      id: line.id,
      key: line.key,
      metric: line.metric,
      amount: line.amount,
      start: line.start,
      end: line.end,
      window: line.windowEnd,
      ...(line.dimensions ? { dimensions: line.dimensions } : {}),
      ...(line.properties ? { properties: line.properties } : {}),
      ...(batch ? { batch } : {}),
      ...(line.reason ? { reason: line.reason } : {}),
    }
  }

  /** Writes every unconfirmed line (in flight too: it may not have arrived) and the set-aside lines. */
  function persist(): number {
    if (!dirty) return queued()
    dirty = false
    const lines: JournalLine[] = []
    for (const batch of retries) for (const line of batch.lines) lines.push(journalLine(line, batch.id))
    for (const batch of flying) for (const line of batch.lines) lines.push(journalLine(line, batch.id))
    for (const line of ready) lines.push(journalLine(line))
    for (const line of open) lines.push(journalLine(line))
    // Confirmed units a token does not count yet: without them, a restart that gets back the same token (its
    // snapshot older than the confirmation) would let a cap be passed by what was already used.
    const confirmed: JournalConfirmed[] = []
    const now = platform.now()
    for (const [key, metrics] of counters)
      for (const [metric, counter] of metrics)
        if (counter.acked.length > 0 && counter.windowEnd > now)
          confirmed.push({ key, metric, window: counter.windowEnd, acked: [...counter.acked] })
    host.write(
      JOURNAL_KEY,
      JSON.stringify({ v: 1, lines, setAside: setAside.map((l) => journalLine(l)), confirmed }),
    )
    return lines.length
  }

  /** Takes back what an earlier run left: every line sealed (its id may have reached the server), batches kept. */
  async function restore(): Promise<void> {
    const text = await host.read(JOURNAL_KEY)
    if (text === undefined) return
    let journal: { v?: unknown; lines?: unknown; setAside?: unknown; confirmed?: unknown }
    try {
      journal = JSON.parse(text) as typeof journal
    } catch {
      journal = {}
    }
    if (journal.v !== 1 || !Array.isArray(journal.lines)) {
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
    const now = platform.now()
    const batches = new Map<string, Batch>()
    const toLine = (entry: JournalLine): Line => {
      const line: Line = {
        id: entry.id,
        key: entry.key,
        metric: entry.metric,
        amount: entry.amount,
        start: entry.start,
        end: entry.end,
        windowEnd: entry.window,
        dimensions: entry.dimensions,
        properties: entry.properties,
        sealed: false,
        generation: -1,
        json: '',
        bytes: 0,
        reason: entry.reason,
      }
      seal(line)
      return line
    }
    for (const entry of journal.lines) {
      if (!isJournalLine(entry)) continue
      const line = toLine(entry)
      if (line.windowEnd > now) {
        // Not confirmed before the restart: count it locally again, as the token's snapshot may not have it.
        const counter = counterFor(line.key, line.metric, line.windowEnd, now)
        counter.pending += line.amount
        line.generation = counter.generation
      }
      if (entry.batch === undefined) ready.push(line)
      else {
        let batch = batches.get(entry.batch)
        if (batch === undefined) {
          batch = { id: entry.batch, lines: [] }
          batches.set(entry.batch, batch)
          retries.push(batch)
        }
        batch.lines.push(line)
      }
    }
    if (Array.isArray(journal.setAside))
      for (const entry of journal.setAside) if (isJournalLine(entry)) setAside.push(toLine(entry))
    if (Array.isArray(journal.confirmed))
      for (const entry of journal.confirmed) {
        if (!isJournalConfirmed(entry) || entry.window <= now) continue
        counterFor(entry.key, entry.metric, entry.window, now).acked.push(...entry.acked)
      }
    if (queued() > 0) wake(0)
  }

  // --- the meter -----------------------------------------------------------------------------------------------

  return {
    record,
    unreported,
    restore,

    /**
     * Sends everything queued now, ignoring any backoff, and resolves when it is confirmed, or when a batch failed
     * and what is left is persisted. With `keepalive` (a page being hidden), everything is persisted first and
     * then sent in `keepalive` requests within the browser's 64 KiB budget, without waiting for answers.
     */
    async flush(keepalive = false): Promise<FlushResult> {
      const before = stats.sent
      if (keepalive) {
        sealOpen()
        dirty = true
        persist()
        let budget = KEEPALIVE_BUDGET
        const sends: Promise<boolean>[] = []
        for (;;) {
          const batch = nextBatch(Math.min(budget, maxBatchBytes))
          if (batch === undefined) break
          const size = batch.lines.reduce((sum, line) => sum + line.bytes, BATCH_OVERHEAD)
          if (size > budget) {
            retries.unshift(batch)
            break
          }
          budget -= size
          sends.push(deliver(batch, true))
        }
        await Promise.allSettled(sends)
      } else {
        await Promise.allSettled([...running])
        await drain(true)
      }
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
          await Promise.race([
            (async () => {
              await Promise.allSettled([...running])
              await drain(true)
            })(),
            deadline,
          ])
          platform.clearTimeout(timer)
        }
        closed = true
        platform.clearTimeout(tickTimer)
        platform.clearTimeout(persistTimer)
        tickTimer = persistTimer = undefined
      }
      dirty = true
      const persisted = persist()
      return { sent: stats.sent - before, persisted, dropped: stats.dropped }
    },

    stats(): UsageStats {
      return { ...stats, pending: queued(), setAside: setAside.length }
    },

    setAside(): readonly UsageLine[] {
      return setAside.map((line) => ({
        ...(JSON.parse(line.json) as UsageLine),
        ...(line.reason === undefined ? {} : { reason: line.reason }),
      }))
    },

    /** Queues the set-aside lines again (same ids) after the cause was fixed. */
    resendSetAside(): number {
      const count = setAside.length
      for (const line of setAside.splice(0)) {
        line.reason = undefined
        ready.push(line)
      }
      if (count > 0) {
        dirty = true
        wake(0)
      }
      return count
    },
  }
}

export type UsageMeter = ReturnType<typeof createUsageMeter>
