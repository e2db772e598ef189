import { withGetters } from '../platform/with-getters.js'

/** How retries are spaced: capped exponential backoff with full jitter (the "Full Jitter" of AWS's analysis). */
export interface BackoffOptions {
  /** The first retry waits up to this long. Default 1 000 ms. */
  initialMs?: number
  /** No wait is longer than this. Default 300 000 ms. */
  maxMs?: number
}

/** The state of one thing that is retried: a token refresh, an event stream, a usage sender. */
export interface RetryState {
  /** Failures in a row since the last reset. */
  readonly failures: number
  /**
   * Counts a failure at `now` and returns how long to wait before the next attempt: full jitter up to the capped
   * exponential ceiling, and never less than the server's `Retry-After`.
   */
  recordFailure(now: number, retryAfterMs?: number): number
  /**
   * Counts a success at `now`. With `resetAfterHealthyMs`, the failure count is forgotten only once the thing has
   * stayed healthy that long (a stream that opens and closes at once keeps backing off); without, at once.
   */
  recordSuccess(now: number): void
}

/** Options of {@link createRetryState}, every one given (the defaults are the callers' to resolve). */
export interface RetryStateOptions extends Required<BackoffOptions> {
  /** A number in [0, 1): the jitter source. */
  random: () => number
  /** Forget failures only after this long healthy (see {@link RetryState.recordSuccess}); 0: at once. */
  resetAfterHealthyMs: number
  /** The shortest wait, whatever the jitter draws. */
  minMs: number
}

/** The delay before retry number `attempt` (0-based): uniformly random in [0, min(max, initial · 2^attempt)]. */
export function backoffDelay(attempt: number, random: number, options: Required<BackoffOptions>): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30))
  return Math.floor(random * ceiling)
}

/**
 * One retry state: what LaunchDarkly's `Backoff` keeps, on an injected clock and random source. The three things
 * the client retries share it, so none of them can reset early by hand.
 */
export function createRetryState(options: RetryStateOptions): RetryState {
  const { resetAfterHealthyMs: resetAfter, minMs } = options
  const backoff = { initialMs: options.initialMs, maxMs: options.maxMs }
  let failures = 0
  let healthySince: number | undefined
  const state: Omit<RetryState, 'failures'> = {
    recordFailure(now, retryAfterMs) {
      if (healthySince !== undefined && now - healthySince >= resetAfter) failures = 0
      healthySince = undefined
      const wait = Math.max(minMs, retryAfterMs ?? 0, backoffDelay(failures, options.random(), backoff))
      failures++
      return wait
    },
    recordSuccess(now) {
      if (resetAfter === 0) failures = 0
      else healthySince ??= now
    },
  }
  return withGetters(state, {
    failures: () => failures,
  })
}

/**
 * The longest wait a `Retry-After` can ask for: a day. It is honoured over `backoff.maxMs` (the server knows its
 * load), but one odd answer (a proxy's error page saying 99999999999 seconds) must not stop a customer's renewals,
 * or the usage sender, for good.
 */
export const MAX_RETRY_AFTER_MS = 86_400_000

/** A `Retry-After` header (seconds or an HTTP date) as milliseconds from `now`, at most a day, or `undefined`. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null) return undefined
  const text = header.trim()
  const ms = /^\d+$/.test(text) ? Number(text) * 1000 : Date.parse(text) - now
  if (Number.isNaN(ms)) return undefined
  return Math.min(MAX_RETRY_AFTER_MS, Math.max(0, ms))
}
