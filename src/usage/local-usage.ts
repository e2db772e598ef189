import type { Line } from './line.js'
import { letGo } from './open-line.js'

/** Counters of a customer no longer worth keeping are looked for at most this often. */
const PRUNE_INTERVAL_MS = 60_000

/**
 * At most this many per-resource counters whose units are all confirmed are kept; past it, those go first, and a
 * check of their resource counts only what the token's snapshot holds until the next token. Counters with units
 * in flight are bounded by the meter's queue (`maxQueuedLines`).
 */
export const MAX_RESOURCE_COUNTERS = 10_000

/** Names made for resources' counters, kept (a bounded number) so a check reuses the string and its hash. */
const names = new Map<string, Map<string, string>>()
const MAX_NAMES = 10_000
let named = 0

/**
 * The local counter of one resource's usage of a metric: a counter like a metric's, under its own name. The name
 * is made once per metric and resource (up to 10,000 in all): a check that made it anew each time would spend
 * most of its time hashing it.
 */
export function resourceMetric(metric: string, resource: string): string {
  let byResource = names.get(metric)
  const known = byResource?.get(resource)
  if (known !== undefined) return known
  const name = `${metric}\u0000${resource}`
  if (named < MAX_NAMES) {
    if (byResource === undefined) {
      byResource = new Map()
      names.set(metric, byResource)
    }
    byResource.set(resource, name)
    named++
  }
  return name
}
const isResourceMetric = (metric: string): boolean => metric.includes('\u0000')

/** Local usage of one customer and metric in its current window: what a check adds to the token's snapshot. */
export interface Counter {
  windowEnd: number
  /** What `windowEnd` was worked out from: while it is the same and the window lasts, no need to ask again. */
  source: unknown
  /** Changes when the window moves on, so a line from the last window never counts into this one. */
  generation: number
  /** Units recorded in this window that the server has not confirmed. */
  pending: number
  /** Confirmed units as pairs [server time, units]: counted until a token issued after that time arrives. */
  acked: number[]
  /** The aggregator's open line without dimensions, while it is open; let go of when the window moves on. */
  line: Line | undefined
  /** That line's running amount and end, kept here so a record writes one object (see `open-line.ts`). */
  lineAmount: number
  lineEnd: number
  /** The aggregator's open lines with dimensions, by dimensions key; forgotten when the window moves on. */
  byDimensions: Map<string, Line> | undefined
}

/** Confirmed units of one counter that no token counted yet, as the journal keeps them across a restart. */
export interface ConfirmedUnits {
  key: string
  metric: string
  window: number
  acked: number[]
}

function hasOpenLine(counter: Counter): boolean {
  // `line` is set only while it is open (`open-line.ts`); lines with dimensions stay in their map once sealed.
  if (counter.line !== undefined) return true
  if (counter.byDimensions === undefined) return false
  for (const line of counter.byDimensions.values()) if (!line.sealed) return true
  return false
}

/** A counter with nothing counted yet. Every counter is made here, so all of them share one shape. */
function newCounter(windowEnd: number, generation: number): Counter {
  return {
    windowEnd,
    source: undefined,
    generation,
    pending: 0,
    acked: [],
    line: undefined,
    lineAmount: 0,
    lineEnd: 0,
    byDimensions: undefined,
  }
}

type Counters = ReadonlyMap<string, ReadonlyMap<string, Counter>>

/** The counter `line` counts into, while it still does. */
function counterOf(counters: Counters, line: Line): Counter | undefined {
  const counter = counters.get(line.key)?.get(line.metric)
  return counter !== undefined && counter.generation === line.generation ? counter : undefined
}

/** The resource's own counter `line` also counts into, while it still does. */
function resourceCounterOf(counters: Counters, line: Line): Counter | undefined {
  if (line.resource === undefined) return undefined
  const counter = counters.get(line.key)?.get(resourceMetric(line.metric, line.resource))
  return counter !== undefined && counter.generation === line.resourceGeneration ? counter : undefined
}

/** Moves `line`'s units from pending to confirmed in one counter. */
function confirm(counter: Counter, line: Line, at: number): void {
  counter.pending = Math.max(0, counter.pending - line.amount)
  // Pairs in arrival order; confirmations within the same second merge into one pair, taking the later time:
  // a snapshot between the two must not hide the later units.
  const acked = counter.acked
  const last = acked.length - 2
  if (last >= 0 && Math.floor(acked[last]! / 1000) === Math.floor(at / 1000)) {
    acked[last + 1]! += line.amount
    acked[last] = Math.max(acked[last]!, at)
  } else acked.push(at, line.amount)
}

/** Forgets per-resource counters that only hold confirmed units (none in flight or open); returns how many. */
function shedResourceCounters(counters: Map<string, Map<string, Counter>>): number {
  let shed = 0
  for (const [key, metrics] of counters) {
    for (const [metric, counter] of metrics)
      if (isResourceMetric(metric) && counter.pending === 0 && !hasOpenLine(counter)) {
        metrics.delete(metric)
        shed++
      }
    if (metrics.size === 0) counters.delete(key)
  }
  return shed
}

/**
 * The usage this process knows of that a token's snapshot may not count yet, per customer and metric: records
 * not confirmed by the server, and confirmed ones newer than the snapshot. A check reads it through
 * {@link LocalUsage.unreported}; the sender moves units from pending to confirmed.
 */
export function createLocalUsage() {
  const counters = new Map<string, Map<string, Counter>>()
  /** Global, so a line never matches a counter that was forgotten and made again. */
  let generations = 0
  let prunedAt = 0
  let resourceCounters = 0

  function counterFor(key: string, metric: string, windowEnd: number, now: number): Counter {
    let metrics = counters.get(key)
    if (metrics === undefined) {
      metrics = new Map()
      counters.set(key, metrics)
    }
    let counter = metrics.get(metric)
    if (counter === undefined) {
      if (isResourceMetric(metric) && ++resourceCounters > MAX_RESOURCE_COUNTERS) {
        resourceCounters -= shedResourceCounters(counters)
        // Shedding may have emptied and dropped this customer's map: the new counter goes in a map that is kept.
        counters.set(key, metrics)
      }
      counter = newCounter(windowEnd, ++generations)
      metrics.set(metric, counter)
    } else if (counter.windowEnd !== windowEnd) {
      // A new window: what was counted belongs to the last one. A window that has not ended yet (the token's cap
      // became known after the first records) keeps its count.
      if (counter.windowEnd <= now) {
        counter.generation = ++generations
        counter.pending = 0
        counter.acked.length = 0
      }
      counter.windowEnd = windowEnd
      // The open line stays open in the aggregator, for the last window: it takes its sums with it.
      letGo(counter)
      counter.byDimensions = undefined
    }
    return counter
  }

  /**
   * Units of `metric` the customer used in the current window that a usage snapshot taken at `snapshotAt` (the
   * cap's `asOf`, else the token's `iat`) does not count yet: unconfirmed records, and confirmed ones the server
   * stored at or after that moment.
   */
  function unreported(key: string, metric: string, now: number, snapshotAt: number): number {
    const counter = counters.get(key)?.get(metric)
    if (counter === undefined || counter.windowEnd <= now) return 0
    let units = counter.pending
    const acked = counter.acked
    if (acked.length === 0) return units
    // The server stored these before the token was signed: its snapshot has them. Tokens only get newer.
    let stale = 0
    while (stale < acked.length && acked[stale]! < snapshotAt) stale += 2
    if (stale > 0) acked.splice(0, stale)
    for (let i = 1; i < acked.length; i += 2) units += acked[i]!
    return units
  }

  return {
    /** Counters by customer key and metric, as they stand: read on the hot path, changed only through this module. */
    counters: counters as ReadonlyMap<string, ReadonlyMap<string, Counter>>,
    /** The counter of the window ending at `windowEnd`, made or moved on as needed. */
    counterFor,
    unreported,

    /** The counter of `resource`'s usage of `metric`, in the window of the metric's own `account` counter. */
    resourceCounterFor(
      account: Counter,
      key: string,
      metric: string,
      resource: string,
      now: number,
    ): Counter {
      const name = resourceMetric(metric, resource)
      const counter = counters.get(key)?.get(name)
      if (counter !== undefined && counter.windowEnd === account.windowEnd) return counter
      return counterFor(key, name, account.windowEnd, now)
    },

    /** The server stored `line` at `at`: its units move from pending to confirmed. */
    acknowledge(line: Line, at: number): void {
      const counter = counterOf(counters, line)
      if (counter !== undefined) confirm(counter, line, at)
      const own = resourceCounterOf(counters, line)
      if (own !== undefined) confirm(own, line, at)
    },

    /**
     * `line` will not reach the server as it is (set aside): its units stay pending, counted locally until the
     * window ends, since no snapshot will ever hold them. The line stops tracking the counter.
     */
    release(line: Line): void {
      if (counterOf(counters, line) !== undefined) line.generation = -1
      line.resourceGeneration = -1
    },

    /** A line back from the journal, not confirmed before the restart: counted locally again. */
    restorePending(line: Line, now: number): void {
      if (line.windowEnd <= now) return
      const counter = counterFor(line.key, line.metric, line.windowEnd, now)
      counter.pending += line.amount
      line.generation = counter.generation
      if (line.resource === undefined) return
      const own = counterFor(line.key, resourceMetric(line.metric, line.resource), line.windowEnd, now)
      own.pending += line.amount
      line.resourceGeneration = own.generation
    },

    restoreConfirmed(entry: ConfirmedUnits, now: number): void {
      if (entry.window <= now) return
      counterFor(entry.key, entry.metric, entry.window, now).acked.push(...entry.acked)
    },

    /**
     * Confirmed units that a token does not count yet, for the journal: without them, a restart that gets back
     * the same token (its snapshot older than the confirmation) would let a cap be passed by what was used.
     */
    confirmedUnits(now: number): ConfirmedUnits[] {
      const confirmed: ConfirmedUnits[] = []
      for (const [key, metrics] of counters)
        for (const [metric, counter] of metrics)
          if (counter.acked.length > 0 && counter.windowEnd > now)
            confirmed.push({ key, metric, window: counter.windowEnd, acked: [...counter.acked] })
      return confirmed
    },

    /**
     * Forgets what no check needs any more: windows that ended, and confirmed units a newer token counts. This
     * bounds the counters by the customers and metrics with usage in flight or not yet in a token.
     */
    prune(now: number, issuedAt: (key: string) => number | undefined): void {
      if (now < prunedAt + PRUNE_INTERVAL_MS) return
      prunedAt = now
      for (const [key, metrics] of counters) {
        const issued = issuedAt(key)
        for (const [metric, counter] of metrics) {
          if (issued !== undefined) unreported(key, metric, now, issued)
          if (hasOpenLine(counter)) continue
          if (counter.windowEnd <= now || (counter.pending === 0 && counter.acked.length === 0)) {
            metrics.delete(metric)
            if (isResourceMetric(metric)) resourceCounters--
          }
        }
        if (metrics.size === 0) counters.delete(key)
      }
    },
  }
}

export type LocalUsage = ReturnType<typeof createLocalUsage>
