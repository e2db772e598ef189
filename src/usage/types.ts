import type { EntitlementError } from '../core/errors.js'

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
  /** The resource the usage is for (`kind:id`), for a record made with `resource`. */
  readonly resource?: string
  /** Set-aside lines: why the server refused them, or why the SDK did not send them (the protocol's rules). */
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
  /** Lines the server refused, or the SDK would not send, kept aside. */
  readonly setAside: number
  /** The last error, if any. */
  readonly lastError: EntitlementError | undefined
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
