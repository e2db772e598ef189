import { NEVER } from 'entitle/protocol'
import type { CatalogCap } from '../catalog.js'
import type { Repository } from '../repository.js'
import type { EventBus } from './events.js'

/**
 * Usage alerts as the server keeps them: a cap's `thresholds` (percentages of its limit), each recorded once per
 * customer, metric and window when the accepted usage crosses it, whatever number of instances reported that
 * usage and in whatever batches, and published as a `threshold` event on the customer's stream. The SDK fires its
 * own `threshold` event from what it counted; this record is the one a billing system or a notifier trusts, since
 * it is made from the lines the server accepted, exactly once each.
 */
export function createUsageAlerts(options: { repo: Repository; events: EventBus; now: () => number }) {
  const { repo, events, now } = options

  return {
    /**
     * `metric`'s total in the window ending `windowEnd` went from `before` to `after`: records (inside the running
     * transaction) each threshold crossed that was not recorded before, in ascending order.
     */
    observe(
      customerId: string,
      metric: string,
      windowEnd: number,
      cap: CatalogCap | undefined,
      before: number,
      after: number,
    ): void {
      if (cap?.thresholds === undefined || cap.limit === 0) return
      for (const threshold of cap.thresholds) {
        // In whole percent, as the SDK compares: no rounding puts the two on different sides of a line.
        const line = cap.limit * threshold
        if (after * 100 < line || before * 100 >= line) continue
        const alert = { metric, window_end: windowEnd, threshold, cap_limit: cap.limit, total: after }
        if (!repo.insertAlert(customerId, alert, now())) continue
        events.record('threshold', customerId, {
          metric,
          threshold,
          limit: cap.limit,
          total: after,
          windowEnd: windowEnd === NEVER ? null : new Date(windowEnd).toISOString(),
        })
      }
    },

    /** A customer's threshold crossings, newest window first: what the admin API shows. */
    list(customerId: string) {
      return repo.alerts(customerId).map((row) => ({
        metric: row.metric,
        windowEnd: row.window_end === NEVER ? null : new Date(row.window_end).toISOString(),
        threshold: row.threshold,
        limit: row.cap_limit,
        total: row.total,
        crossedAt: new Date(row.crossed_at).toISOString(),
      }))
    },
  }
}

export type UsageAlerts = ReturnType<typeof createUsageAlerts>
