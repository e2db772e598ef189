import { createDueQueue } from '../../platform/due-queue.js'
import type { Platform } from '../../platform/platform.js'
import { createRetryState } from '../../transport/retry.js'
import type { Backoff } from '../config.js'
import type { Entry } from './cache-entry.js'

/** The soonest a renewal is asked again after a failure or a token handed back already due. */
const MIN_RETRY_MS = 1000

/**
 * When each customer's token is renewed: at `refreshAt` of its life (with up to 10% jitter earlier), soon after a
 * restart (a stored token may be old), and after a failure with backoff and the server's `Retry-After`. One
 * platform timer serves every customer (`platform/due-queue.ts`); a token that is never renewed (a token string) is never
 * scheduled.
 */
export function createRenewalSchedule(options: {
  readonly platform: Platform
  readonly refreshAt: number
  readonly backoff: Backoff
  /** Whether anything renews tokens: a server or a token function (a token string never changes). */
  readonly renews: boolean
  readonly renew: (entry: Entry) => void
  /** Asks again this long after a renewal starts unless its answer moves it first (request-driven runtimes). */
  readonly unansweredRetryMs?: number | undefined
}) {
  const { platform, refreshAt, backoff, renews, unansweredRetryMs } = options
  const renewals = createDueQueue<Entry>(platform, (entry) => {
    if (unansweredRetryMs !== undefined) renewals.set(entry, platform.now() + unansweredRetryMs)
    options.renew(entry)
  })
  let closed = false

  /** Milliseconds until a token is due for renewal: `refreshAt` of its life, up to 10% earlier (jitter). */
  function untilRenewal(entry: Entry): number {
    const { issuedAt, expiresAt } = entry.entitlements
    const life = expiresAt - issuedAt
    return issuedAt + life * refreshAt - platform.random() * life * 0.1 - platform.now()
  }

  function schedule(entry: Entry, delay?: number): void {
    if (closed || !renews) return
    renewals.set(entry, platform.now() + (delay ?? Math.max(MIN_RETRY_MS, untilRenewal(entry))))
  }

  /** Schedules the next attempt after a failure, with backoff (and the server's `Retry-After`). */
  function retryLater(entry: Entry, retryAfterMs?: number): void {
    entry.retry ??= createRetryState({
      ...backoff,
      random: platform.random,
      minMs: MIN_RETRY_MS,
      resetAfterHealthyMs: 0,
    })
    schedule(entry, entry.retry.recordFailure(platform.now(), retryAfterMs))
  }

  return {
    /** A token just installed: renewed on schedule, or, read from storage, soon after start (1 to 5 s). */
    installed(entry: Entry): void {
      schedule(
        entry,
        entry.origin === 'stored' ? MIN_RETRY_MS + Math.floor(platform.random() * 4000) : undefined,
      )
    },
    retryLater,
    /**
     * The source vouched for the token in memory: renewed on schedule; when it is already due and the source
     * still hands it back, asked again later (`whenDueMs` at least, with backoff), never every second.
     */
    vouched(entry: Entry, whenDueMs?: number): void {
      const wait = untilRenewal(entry)
      if (wait <= MIN_RETRY_MS) retryLater(entry, whenDueMs)
      else {
        entry.retry?.recordSuccess(platform.now())
        schedule(entry, wait)
      }
    },
    /** The entry left memory: nothing to renew. */
    forget: (entry: Entry) => renewals.delete(entry),
    /** Stops the timer; nothing is scheduled after. */
    close(): void {
      closed = true
      renewals.close()
    },
  }
}

export type RenewalSchedule = ReturnType<typeof createRenewalSchedule>
