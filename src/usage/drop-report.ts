import { EntitlementError } from '../core/errors.js'
import type { Platform } from '../platform/platform.js'

/**
 * Counts a record the meter could not keep (the queue full, or recorded after `close()`), and tells the error
 * listeners at most once a flush interval: a full queue drops every record that follows, and one report per record
 * would flood them.
 */
export function createDropReport(parts: {
  readonly platform: Platform
  readonly stats: { dropped: number; droppedUnits: number }
  readonly fail: (error: EntitlementError) => void
  readonly flushIntervalMs: number
  readonly maxQueuedLines: number
}): (amount: number, closed: boolean) => void {
  const { platform, stats, fail, flushIntervalMs, maxQueuedLines } = parts
  let reportedAt = 0
  return (amount, closed) => {
    stats.dropped++
    stats.droppedUnits += amount
    const now = platform.now()
    if (now < reportedAt + flushIntervalMs) return
    reportedAt = now
    fail(
      new EntitlementError(
        'usage_dropped',
        closed
          ? 'usage recorded after close() was dropped'
          : `the usage queue is full (${maxQueuedLines} lines): records are being dropped`,
      ),
    )
  }
}
