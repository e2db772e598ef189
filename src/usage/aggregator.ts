import { withGetters } from '../platform/with-getters.js'
import { createLine, type Line, sealLine } from './line.js'
import type { Counter } from './local-usage.js'
import { addToOpenLine, bringUpToDate, holdOpenLine, letGo, MAX_LINE_AMOUNT } from './open-line.js'

/**
 * What became of a record in the aggregator: `summed` into a line that was open, `opened` a line of its own, or
 * `dropped` because the queue is full even after aggregating harder.
 */
export type Added = 'summed' | 'opened' | 'dropped'

/** A stable key for a set of dimensions: sorted names, so `{a, b}` and `{b, a}` aggregate together. */
function dimensionsKey(dimensions: Record<string, string>): string {
  const names = Object.keys(dimensions).sort()
  let key = ''
  for (const name of names) key += `${name}\u0000${dimensions[name]}\u0001`
  return key
}

/**
 * Sums records into open lines: one per customer, metric, window and set of dimensions (aggregate mode), or one
 * per record (raw mode). Near the queue bound it aggregates harder: past `detailedLineLimit` lines held, records
 * with dimensions or in raw mode fold into the customer's plain line, so the units stay and only detail goes.
 */
export function createAggregator(options: {
  raw: boolean
  maxQueuedLines: number
  nextId: () => string
  /** Lines held anywhere in the meter (open, waiting, retried, in flight). */
  queued: () => number
  stats: { aggregated: number }
}) {
  const { raw, maxQueuedLines, nextId, queued, stats } = options
  const detailedLineLimit = Math.floor(maxQueuedLines * 0.9)
  let open: Line[] = []
  let openBytes = 0

  /**
   * Adds a record to an open line with dimensions, unless the line is sealed or the sum would pass the protocol's
   * amount (then a new line starts). A plain line sums in its counter instead (`open-line.ts`).
   */
  function sum(line: Line | undefined, amount: number, now: number): boolean {
    if (line === undefined || line.sealed || line.amount + amount > MAX_LINE_AMOUNT) return false
    line.amount += amount
    // A clock set back keeps start <= end: the line covers every record in it.
    if (now > line.end) line.end = now
    else if (now < line.start) line.start = now
    stats.aggregated++
    return true
  }

  function openLine(
    counter: Counter,
    key: string,
    metric: string,
    amount: number,
    now: number,
    dimensions: Record<string, string> | undefined,
    properties: Record<string, unknown> | undefined,
    account: Counter,
    resource: string | undefined,
  ): Line {
    // A resource's line lives in its resource's counter and counts into the metric's (the account's) as well.
    const line = createLine(
      nextId(),
      key,
      metric,
      amount,
      now,
      account.windowEnd,
      account.generation,
      dimensions,
      properties,
      resource,
      resource === undefined ? -1 : counter.generation,
    )
    open.push(line)
    // An estimate: the exact size is measured when the line is sealed.
    openBytes += 160 + key.length + metric.length + (dimensions || properties ? 256 : 0)
    return line
  }

  /**
   * `counter` holds the open lines: the metric's, or for a record with a `resource`, that resource's own counter,
   * with `account` the metric's (every line counts into it). Folding under pressure keeps the resource.
   */
  function addSlowly(
    counter: Counter,
    key: string,
    metric: string,
    amount: number,
    now: number,
    dimensions: Record<string, string> | undefined,
    properties: Record<string, unknown> | undefined,
    account: Counter = counter,
    resource?: string,
  ): Added {
    if ((raw || dimensions !== undefined) && queued() < detailedLineLimit) {
      if (raw) {
        openLine(counter, key, metric, amount, now, dimensions, properties, account, resource)
        return 'opened'
      }
      const dimensionKey = dimensionsKey(dimensions!)
      counter.byDimensions ??= new Map()
      if (sum(counter.byDimensions.get(dimensionKey), amount, now)) return 'summed'
      counter.byDimensions.set(
        dimensionKey,
        openLine(counter, key, metric, amount, now, dimensions, undefined, account, resource),
      )
      return 'opened'
    }
    if (addToOpenLine(counter, amount, now)) {
      stats.aggregated++
      return 'summed'
    }
    if (queued() >= maxQueuedLines) return 'dropped'
    holdOpenLine(
      counter,
      openLine(counter, key, metric, amount, now, undefined, undefined, account, resource),
    )
    return 'opened'
  }

  const aggregator = {
    /**
     * Counts `amount` into the line it belongs to, opening one as needed. The commonest case, a record for an open
     * plain line, the meter handles itself with `addToOpenLine` before it calls this.
     */
    add: addSlowly,

    /** The open lines with their sums brought up to date, as the journal writes them down; they stay open. */
    current(): readonly Line[] {
      for (const line of open) bringUpToDate(line)
      return open
    },

    /**
     * Seals every open line and hands it over: from here on its id and amount are fixed, and it may reach the
     * server as it is. Each is checked once against the protocol's rules (a subject the wire cannot carry): `ready`
     * lines may be sent, `refused` ones carry the reason a server would refuse them.
     */
    seal(subjectOf: (key: string) => string | undefined): { ready: Line[]; refused: Line[] } {
      const taken = open
      open = []
      openBytes = 0
      const ready: Line[] = []
      const refused: Line[] = []
      for (const line of taken) {
        if (line.holder !== undefined) letGo(line.holder)
        line.reason = sealLine(line, subjectOf(line.key))
        if (line.reason === undefined) ready.push(line)
        else refused.push(line)
      }
      return { ready, refused }
    },
  }
  return withGetters(aggregator, {
    /** Lines taking records. A plain one's `amount` and `end` lag behind its counter's: see {@link current}. */
    open: (): readonly Line[] => open,
    /** An estimate of the open lines' JSON size. */
    openBytes: () => openBytes,
  })
}

export type Aggregator = ReturnType<typeof createAggregator>
