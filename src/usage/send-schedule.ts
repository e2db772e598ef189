import type { Platform } from '../platform/platform.js'
import { createRetryState } from '../transport/retry.js'

/**
 * When the meter sends: one timer, armed for the soonest wake-up asked for (a sooner one wins over a later one),
 * and the backoff after a failed batch (capped, full jitter, the server's `Retry-After`) that holds sending back
 * until it has passed. `armed` is a plain field: `record()` reads it on every call.
 */
export function createSendSchedule(options: {
  readonly platform: Platform
  readonly backoff: { readonly initialMs: number; readonly maxMs: number }
  /** The timer fired and no backoff holds sending back. */
  readonly due: (now: number) => void
  /** The timer fired (backoff or not): a moment for housekeeping. */
  readonly tick: (now: number) => void
}) {
  const { platform, backoff } = options
  const retry = createRetryState({ ...backoff, random: platform.random, minMs: 0, resetAfterHealthyMs: 0 })
  let timer: unknown
  let at = Number.POSITIVE_INFINITY
  let backoffUntil = 0
  let stopped = false

  function fire(): void {
    timer = undefined
    at = Number.POSITIVE_INFINITY
    schedule.armed = false
    if (stopped) return
    const now = platform.now()
    options.tick(now)
    if (now < backoffUntil) schedule.wake(backoffUntil - now)
    else options.due(now)
  }

  const schedule = {
    /** Whether the timer is set. */
    armed: false,
    /** Makes sure the timer fires within `ms`. */
    wake(ms: number): void {
      if (stopped) return
      const when = platform.now() + ms
      if (timer !== undefined && at <= when) return
      platform.clearTimeout(timer)
      at = when
      timer = platform.setTimeout(fire, ms)
      schedule.armed = true
    },
    /** Whether a backoff holds sending back at `now`. */
    holding: (now: number) => now < backoffUntil,
    /** How long the backoff still holds at `now` (0 when it does not). */
    holdLeft: (now: number) => Math.max(0, backoffUntil - now),
    /** A batch failed: back off (at least `retryAfterMs`), and wake when the wait is over. */
    failed(now: number, retryAfterMs: number | undefined): void {
      const wait = retry.recordFailure(now, retryAfterMs)
      backoffUntil = now + wait
      schedule.wake(wait)
    },
    /** The server refused the credentials or the endpoint: asking again soon cannot help; wait the longest. */
    refused(now: number): void {
      retry.recordFailure(now)
      backoffUntil = now + backoff.maxMs
      schedule.wake(backoff.maxMs)
    },
    /** A batch was delivered. */
    delivered(now: number): void {
      retry.recordSuccess(now)
    },
    /** Stops the timer; nothing fires from here on. */
    stop(): void {
      stopped = true
      platform.clearTimeout(timer)
      timer = undefined
      schedule.armed = false
    },
  }
  return schedule
}

export type SendSchedule = ReturnType<typeof createSendSchedule>
