import { formatUsageLineProblem, usageLineProblem } from '../protocol/usage-rules.js'
import type { Counter } from './local-usage.js'

/**
 * One usage line: the records of one customer, metric, window and set of dimensions, summed while it is open.
 * Sealing fixes its id, amount and wire JSON: from then on it may already have reached the server as it is.
 */
export interface Line {
  readonly id: string
  /** The client's cache key of the customer (the single-tenant key stands for the token's subject). */
  readonly key: string
  readonly metric: string
  amount: number
  start: number
  end: number
  readonly windowEnd: number
  readonly dimensions: Record<string, string> | undefined
  readonly properties: Record<string, unknown> | undefined
  /** The resource the usage is for (`kind:id`), for a metric counted per resource. */
  readonly resource: string | undefined
  sealed: boolean
  /** The local counter generation this line counts into (see `local-usage.ts`), or -1 once it no longer does. */
  generation: number
  /** The same for the resource's own counter, or -1 (no resource, or it no longer counts). */
  resourceGeneration: number
  /** The wire JSON and its UTF-8 size (with a separating comma), fixed at sealing. */
  json: string
  bytes: number
  /** Why the line is set aside: the server refused it, or the protocol's rules would. */
  reason: string | undefined
  /**
   * The counter that keeps this line's running amount and end while it is open without dimensions (see
   * `open-line.ts`): until they are brought back, `amount` and `end` here lag behind.
   */
  holder: Counter | undefined
}

export function createLine(
  id: string,
  key: string,
  metric: string,
  amount: number,
  now: number,
  windowEnd: number,
  generation: number,
  dimensions: Record<string, string> | undefined,
  properties: Record<string, unknown> | undefined,
  resource?: string,
  resourceGeneration = -1,
): Line {
  return {
    id,
    key,
    metric,
    amount,
    start: now,
    end: now,
    windowEnd,
    dimensions,
    properties,
    resource,
    sealed: false,
    generation,
    resourceGeneration,
    json: '',
    bytes: 0,
    reason: undefined,
    holder: undefined,
  }
}

const encoder = /*@__PURE__*/ new TextEncoder()

/**
 * Seals `line` for `subject` (absent: the server takes the credential's customer) and checks it against the
 * protocol's rules, once per line. Returns why a server would refuse it, or `undefined`.
 */
export function sealLine(line: Line, subject: string | undefined): string | undefined {
  line.sealed = true
  const wire = {
    id: line.id,
    subject,
    metric: line.metric,
    amount: line.amount,
    start: line.start,
    end: line.end,
    resource: line.resource,
    dimensions: line.dimensions,
    properties: line.properties,
  }
  line.json = JSON.stringify(wire)
  line.bytes = encoder.encode(line.json).length + 1
  const problem = usageLineProblem(wire)
  return problem === undefined ? undefined : formatUsageLineProblem(problem)
}

/**
 * A random prefix per meter and a counter: unique ids for a few nanoseconds each, in any runtime. The prefix is
 * made with the first id, not with the meter: a Worker's module scope, where a client is made, refuses random values.
 */
export function createIdGenerator(): () => string {
  let prefix: string | undefined
  let sequence = 0
  return () => {
    if (prefix === undefined) {
      prefix = ''
      for (const byte of crypto.getRandomValues(new Uint8Array(12)))
        prefix += byte.toString(16).padStart(2, '0')
    }
    return `${prefix}-${(++sequence).toString(36)}`
  }
}
