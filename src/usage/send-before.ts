import type { Platform } from '../platform/platform.js'
import type { SendSchedule } from './send-schedule.js'
import type { Sender } from './sender.js'

/** The shortest pause between attempts while `close()` sends before its deadline. */
const CLOSE_RETRY_MIN_MS = 50

/**
 * `close()`'s sending: everything queued, and after a failed batch again as its backoff says, until all is
 * confirmed or `deadlineMs` passed. A close with a deadline uses the time it was given, not only one attempt; what
 * is still unconfirmed at the deadline is left for the journal. Never rejects.
 */
export async function sendBefore(
  deadlineMs: number,
  platform: Platform,
  sender: Sender,
  schedule: SendSchedule,
  /** Lines not confirmed yet. */
  pending: () => number,
): Promise<void> {
  let over = false
  async function sendUntilOver(): Promise<void> {
    for (;;) {
      await sender.flushNow()
      if (pending() === 0 || over) return
      const wait = Math.max(CLOSE_RETRY_MIN_MS, schedule.holdLeft(platform.now()))
      await new Promise<void>((resolve) => platform.setTimeout(resolve, wait))
      if (over) return
    }
  }
  let timer: unknown
  const deadline = new Promise<void>((resolve) => {
    timer = platform.setTimeout(() => {
      over = true
      resolve()
    }, deadlineMs)
  })
  await Promise.race([sendUntilOver(), deadline])
  platform.clearTimeout(timer)
}
