import { createDueQueue, type Scheduled } from './due-queue.js'
import type { Platform } from './platform.js'

/** A timer the client set: its callback, and its place in the queue. */
class PendingTimer implements Scheduled {
  due = 0
  slot = -1
  constructor(readonly fn: () => void) {}
}

/**
 * The platform with timers that a request runs when the runtime did not: for runtimes whose timers end with the
 * request that set them (Cloudflare Workers, Vercel Edge Functions). Every timer goes into one queue; the queue
 * still arms a real timer for the earliest, which fires while its request lives, and `runOverdue(now)`, called at
 * each check, runs what is past due and has not run: a revocation poll, a reconnect, a usage send, a summary. Each
 * timer runs once, whichever comes first. What runs is started in the current request, where the platform's
 * `waitUntil` can keep it.
 */
export function withRequestTimers(platform: Platform): {
  readonly platform: Platform
  readonly runOverdue: (now: number) => void
} {
  const queue = createDueQueue<PendingTimer>(platform, (timer) => timer.fn())
  return {
    platform: {
      ...platform,
      setTimeout(fn, ms) {
        const timer = new PendingTimer(fn)
        // biome-ignore lint/complexity/useMathMinMax: Math.max(NaN, 0) is NaN; a NaN delay must become 0.
        queue.set(timer, platform.now() + (ms > 0 ? ms : 0))
        return timer
      },
      clearTimeout(handle) {
        if (handle instanceof PendingTimer) queue.delete(handle)
      },
    },
    runOverdue: queue.catchUp,
  }
}
