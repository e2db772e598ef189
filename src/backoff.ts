/** Capped exponential backoff with full jitter (the "Full Jitter" of AWS's analysis). */
export interface BackoffOptions {
  /** The first retry waits up to this long. Default 1 000 ms. */
  initialMs?: number
  /** No wait is longer than this. Default 300 000 ms. */
  maxMs?: number
}

/** The delay before retry number `attempt` (0-based): uniformly random in [0, min(max, initial · 2^attempt)]. */
export function backoffDelay(attempt: number, random: number, options: Required<BackoffOptions>): number {
  const ceiling = Math.min(options.maxMs, options.initialMs * 2 ** Math.min(attempt, 30))
  return Math.floor(random * ceiling)
}

/** A `Retry-After` header (seconds or an HTTP date) as milliseconds from `now`, or `undefined`. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null) return undefined
  if (/^\d+$/.test(header.trim())) return Number(header.trim()) * 1000
  const date = Date.parse(header)
  return Number.isNaN(date) ? undefined : Math.max(0, date - now)
}
