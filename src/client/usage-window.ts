import type { UsagePeriod } from '../core/claims.js'
import type { Entitlements } from '../core/entitlements.js'
import { currentWindowEnd } from '../core/period.js'
import { NEVER } from '../protocol/usage-rules.js'

const HOUR = 3_600_000

/**
 * The end of the usage window `metric` is in: the cap's window when the token has one (a per-resource cap's when
 * only the resources are capped); for a metric that costs credits, none (what it spent counts against the balance
 * until a snapshot holds it, whatever the hour); else the UTC hour.
 */
export function windowFor(entitlements: Entitlements | undefined, metric: string, now: number): number {
  const feature = entitlements?.features.get(metric)
  // A feature's own cap has its window in the customer's usage snapshot; a per-resource cap carries its own.
  if (feature?.cap !== undefined)
    return windowEnd(feature.cap.period, entitlements!.usage.get(metric)?.resetsAt, now)
  const perResource = feature?.per?.cap
  if (perResource !== undefined) return windowEnd(perResource.period, perResource.resetsAt, now)
  if (entitlements !== undefined && entitlements.costs.size > 0 && entitlements.costs.has(metric))
    return NEVER
  return Math.floor(now / HOUR) * HOUR + HOUR
}

function windowEnd(period: UsagePeriod, resetsAt: number | undefined, now: number): number {
  if (resetsAt === undefined) return NEVER
  return currentWindowEnd(period, resetsAt, now) ?? NEVER
}

/** The key of one customer's counter of one metric in one window, in a usage counter store. */
export function counterKeyOf(subject: string, feature: string, windowEnd: number): string {
  return `${encodeURIComponent(subject)}:${encodeURIComponent(feature)}:${windowEnd}`
}
