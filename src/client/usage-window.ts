import type { Entitlements, FeatureCap } from '../core/entitlements.js'
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
  const cap = feature?.cap ?? feature?.per?.cap
  if (cap === undefined) {
    if (entitlements !== undefined && entitlements.costs.size > 0 && entitlements.costs.has(metric))
      return NEVER
    return Math.floor(now / HOUR) * HOUR + HOUR
  }
  if (cap.resetsAt === undefined) return NEVER
  return currentWindowEnd(cap.period, cap.resetsAt, now) ?? NEVER
}

/**
 * What the token's usage snapshot counts in the current window: the cap's `used`, or nothing once the window the
 * snapshot belongs to has closed.
 */
export function snapshotBaseline(cap: FeatureCap, now: number): number {
  return cap.resetsAt !== undefined && now >= cap.resetsAt ? 0 : cap.used
}

/** The key of one customer's counter of one metric in one window, in a usage counter store. */
export function counterKeyOf(subject: string, feature: string, windowEnd: number): string {
  return `${encodeURIComponent(subject)}:${encodeURIComponent(feature)}:${windowEnd}`
}
