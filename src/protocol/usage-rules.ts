/*
 * The rules of a usage line, without zod: the limits, the id pattern, the words for each rule, and a checker the
 * SDK runs once per line before it sends it. `usage-schema.ts` states the same rules as zod schemas for servers;
 * a differential test holds the two together.
 */

/** Every limit of a usage line and a batch. A line within them is never refused for its shape. */
export const USAGE_LIMITS = /*@__PURE__*/ Object.freeze({
  /** Characters of a line id (`A-Z a-z 0-9 . _ : -`). */
  lineId: 128,
  /** Characters of a batch id (same alphabet). */
  batchId: 128,
  /** Characters of a subject, the customer id (same alphabet). */
  subject: 64,
  /** Characters of a metric name. */
  metric: 256,
  /** Characters of each half of a resource, `kind:id` (the kind has no `:`). */
  resourcePart: 128,
  /** Dimensions on one line. */
  dimensions: 16,
  /** Characters of a dimension name. */
  dimensionName: 128,
  /** Characters of a dimension value. */
  dimensionValue: 512,
  /** Bytes of a raw line's `properties`, as UTF-8 JSON. */
  propertiesBytes: 4096,
  /** Units on one line: the SDK starts a new line before an aggregate would pass it. */
  amount: 1e15,
  /** The latest `start` or `end`, epoch milliseconds: the last moment a JavaScript `Date` can hold. */
  time: 8.64e15,
  /** Lines in one batch. */
  batchLines: 10_000,
  /** Bytes of one batch's JSON body. */
  batchBytes: 1_048_576,
})

/** The characters of an id: letters, digits and `. _ : -`. */
export const ID_ALPHABET = 'A-Za-z0-9._:-'
/** The pattern of an id of at most `max` characters: letters, digits and `. _ : -`, never a path or markup. */
export function idPattern(max: number): RegExp {
  return new RegExp(`^[${ID_ALPHABET}]{1,${max}}$`)
}
/** A customer id as the wire carries it: the `subject` of a usage line, the `{subject}` of a URL. */
export const SUBJECT_PATTERN: RegExp = /*@__PURE__*/ (() => idPattern(USAGE_LIMITS.subject))()
export const LINE_ID_PATTERN = /*@__PURE__*/ (() => idPattern(USAGE_LIMITS.lineId))()
/** A resource as a usage line carries it: `kind:id`, neither empty, no control characters, the kind without `:`. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: the control characters are what the pattern keeps out.
export const RESOURCE_PATTERN: RegExp = /^[^:\u0000-\u001f]{1,128}:[^\u0000-\u001f]{1,128}$/

/** The end of a window that never ends (a metric without a resetting cap, period `total`), epoch ms. */
export const NEVER = Number.MAX_SAFE_INTEGER

/** What is wrong with a usage line, in words both sides use: the SDK's set-aside reason, the server's answer. */
export const USAGE_LINE_RULES = /*@__PURE__*/ (() =>
  Object.freeze({
    object: 'a usage line is a JSON object',
    id: `1 to ${USAGE_LIMITS.lineId} of ${ID_ALPHABET}`,
    batch: `1 to ${USAGE_LIMITS.batchId} of ${ID_ALPHABET}`,
    subject: `1 to ${USAGE_LIMITS.subject} of ${ID_ALPHABET}`,
    metric: `a string of 1 to ${USAGE_LIMITS.metric} characters`,
    amount: `a number from 0 to ${USAGE_LIMITS.amount}`,
    time: `whole epoch milliseconds from 0 to ${USAGE_LIMITS.time}`,
    order: 'end is before start',
    resource: `kind:id, each 1 to ${USAGE_LIMITS.resourcePart} characters`,
    dimensions: `an object of at most ${USAGE_LIMITS.dimensions} strings`,
    dimensionName: `a dimension name of 1 to ${USAGE_LIMITS.dimensionName} characters`,
    dimensionValue: `a string of at most ${USAGE_LIMITS.dimensionValue} characters`,
    properties: `a JSON object of at most ${USAGE_LIMITS.propertiesBytes} bytes`,
  }))()
const RULES = USAGE_LINE_RULES

const encoder = /*@__PURE__*/ new TextEncoder()
/** UTF-8 bytes of `value` as JSON, or `undefined` when it cannot be JSON (a cycle, a BigInt). */
export function jsonBytes(value: unknown): number | undefined {
  try {
    const json = JSON.stringify(value)
    return json === undefined ? undefined : encoder.encode(json).length
  } catch {
    return undefined
  }
}
export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** Where a line breaks a rule and which rule: `path` as a zod issue path joined with dots. */
export interface UsageLineProblem {
  readonly path: string
  readonly message: string
}

function checkDimensions(value: unknown): UsageLineProblem | undefined {
  if (!isPlainObject(value)) return { path: 'dimensions', message: RULES.dimensions }
  const names = Object.keys(value)
  for (const name of names) {
    if (name.length < 1 || name.length > USAGE_LIMITS.dimensionName)
      return { path: `dimensions.${name}`, message: RULES.dimensionName }
    const dimension = value[name]
    if (typeof dimension !== 'string' || dimension.length > USAGE_LIMITS.dimensionValue)
      return { path: `dimensions.${name}`, message: RULES.dimensionValue }
  }
  if (names.length > USAGE_LIMITS.dimensions) return { path: 'dimensions', message: RULES.dimensions }
  return undefined
}

const isTime = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= USAGE_LIMITS.time

/**
 * The first rule `value` breaks as a usage line, or `undefined` when it is one: the same verdict and path as
 * {@link usageLineSchema} (a differential test holds the two together), without zod, for the SDK's hot path and
 * its browser bundle.
 */
export function usageLineProblem(value: unknown): UsageLineProblem | undefined {
  if (!isPlainObject(value)) return { path: '', message: RULES.object }
  const line = value
  if (typeof line.id !== 'string' || !LINE_ID_PATTERN.test(line.id)) return { path: 'id', message: RULES.id }
  if (line.subject !== undefined && (typeof line.subject !== 'string' || !SUBJECT_PATTERN.test(line.subject)))
    return { path: 'subject', message: RULES.subject }
  const metric = line.metric
  if (typeof metric !== 'string' || metric.length < 1 || metric.length > USAGE_LIMITS.metric)
    return { path: 'metric', message: RULES.metric }
  const amount = line.amount
  if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0 || amount > USAGE_LIMITS.amount)
    return { path: 'amount', message: RULES.amount }
  if (!isTime(line.start)) return { path: 'start', message: RULES.time }
  if (!isTime(line.end)) return { path: 'end', message: RULES.time }
  if (
    line.resource !== undefined &&
    (typeof line.resource !== 'string' || !RESOURCE_PATTERN.test(line.resource))
  )
    return { path: 'resource', message: RULES.resource }
  if (line.dimensions !== undefined) {
    const problem = checkDimensions(line.dimensions)
    if (problem !== undefined) return problem
  }
  if (
    line.properties !== undefined &&
    (!isPlainObject(line.properties) ||
      (jsonBytes(line.properties) ?? Infinity) > USAGE_LIMITS.propertiesBytes)
  )
    return { path: 'properties', message: RULES.properties }
  if (line.end < line.start) return { path: 'end', message: RULES.order }
  return undefined
}

/** A problem as one reason string: `amount: a number from 0 to 1000000000000000`. */
export function formatUsageLineProblem(problem: UsageLineProblem): string {
  return problem.path === '' ? problem.message : `${problem.path}: ${problem.message}`
}

/**
 * Why a server refused one line, as a stable code: `invalid` (breaks a rule above), `subject_required` (no
 * subject and a credential that is not one customer's), `forbidden` (another customer's), `unknown_metric`,
 * `unknown_customer`, `not_priced` (the server cannot place the line in a usage window, such as a license whose
 * plan left the catalog).
 */
export type UsageRefusalCode =
  | 'invalid'
  | 'subject_required'
  | 'forbidden'
  | 'unknown_metric'
  | 'unknown_customer'
  | 'not_priced'

/** What became of one line of a batch, in the order the batch listed them. */
export type UsageLineAnswer =
  | { readonly id: string; readonly status: 'accepted' | 'duplicate' }
  | {
      /** `null` when the line had no usable id. */
      readonly id: string | null
      readonly status: 'refused'
      readonly code: UsageRefusalCode
      readonly reason: string
    }

/**
 * The answer to a batch a server could read (`200`): counts, one answer per line, and the refused lines again
 * as `rejected` (the shape of the first v1 servers, which an SDK reads when `lines` is absent). `at` is the
 * server's time of storing, epoch ms: a token signed after it counts these units in its snapshot.
 */
export interface UsageBatchAnswer {
  readonly at: number
  readonly accepted: number
  readonly duplicates: number
  readonly refused: number
  readonly lines: readonly UsageLineAnswer[]
  readonly rejected: ReadonlyArray<{
    readonly id: string | null
    readonly code: UsageRefusalCode
    readonly reason: string
  }>
}
