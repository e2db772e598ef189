import type { UsagePeriod } from './claims.js'

const HOUR = 3_600_000
const FIXED: Partial<Record<UsagePeriod, number>> = { hour: HOUR, day: 24 * HOUR, week: 7 * 24 * HOUR }

/**
 * `anchor` moved by `months` calendar months in UTC, the day clamped to the month's length: Jan 31 + 1 is Feb 28,
 * Jan 31 + 2 is Mar 31 (each step counts from the anchor, so a short month does not shorten the ones after).
 *
 * @example
 * ```ts
 * addMonths(Date.parse('2026-01-31T00:00:00Z'), 1) // 2026-02-28T00:00:00Z
 * ```
 */
export function addMonths(anchor: number, months: number): number {
  const date = new Date(anchor)
  const year = date.getUTCFullYear()
  const month = date.getUTCMonth() + months
  const lastDay = new Date(Date.UTC(year, month + 1, 0)).getUTCDate()
  const day = Math.min(date.getUTCDate(), lastDay)
  return Date.UTC(
    year,
    month,
    day,
    date.getUTCHours(),
    date.getUTCMinutes(),
    date.getUTCSeconds(),
    date.getUTCMilliseconds(),
  )
}

/**
 * The end of the usage window that contains `now`, given that a window of `period` ended at `windowEnd`.
 * Windows follow each other without gaps: for a monthly cap that reset on the 31st, the next resets fall on the
 * last day of shorter months and go back to the 31st after. Pure: no clock is read.
 *
 * @returns `windowEnd` itself while `now` is before it; `undefined` for `total`, which never resets.
 * @example
 * ```ts
 * const end = Date.parse('2026-01-31T00:00:00Z')
 * currentWindowEnd('month', end, Date.parse('2026-02-10T00:00:00Z')) // 2026-02-28T00:00:00Z
 * ```
 */
export function currentWindowEnd(period: UsagePeriod, windowEnd: number, now: number): number | undefined {
  if (period === 'total') return undefined
  if (now < windowEnd) return windowEnd
  const fixed = FIXED[period]
  if (fixed !== undefined) return windowEnd + (Math.floor((now - windowEnd) / fixed) + 1) * fixed
  const step = period === 'year' ? 12 : 1
  // Estimate the number of whole windows passed, then correct by at most a step or two: no long loops.
  const from = new Date(windowEnd)
  const to = new Date(now)
  const monthsApart =
    (to.getUTCFullYear() - from.getUTCFullYear()) * 12 + to.getUTCMonth() - from.getUTCMonth()
  let windows = Math.max(1, Math.floor(monthsApart / step))
  while (windows > 1 && addMonths(windowEnd, (windows - 1) * step) > now) windows--
  while (addMonths(windowEnd, windows * step) <= now) windows++
  return addMonths(windowEnd, windows * step)
}
