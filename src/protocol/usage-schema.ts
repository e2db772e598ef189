import * as z from 'zod/mini'
import {
  idPattern,
  isPlainObject,
  jsonBytes,
  LINE_ID_PATTERN,
  RESOURCE_PATTERN,
  USAGE_LINE_RULES as RULES,
  SUBJECT_PATTERN,
  USAGE_LIMITS,
  type UsageLineProblem,
} from './usage-rules.js'

/*
 * The usage wire format as zod schemas, for a server to validate with and publish (`z.toJSONSchema`): the same
 * rules, limits and words as `usage-rules.ts`, which the SDK uses without zod.
 */

const time = z.int({ error: RULES.time }).check(z.gte(0, RULES.time), z.lte(USAGE_LIMITS.time, RULES.time))
const dimensionsSchema = z
  .record(
    z
      .string()
      .check(
        z.minLength(1, RULES.dimensionName),
        z.maxLength(USAGE_LIMITS.dimensionName, RULES.dimensionName),
      ),
    z
      .string({ error: RULES.dimensionValue })
      .check(z.maxLength(USAGE_LIMITS.dimensionValue, RULES.dimensionValue)),
    { error: (issue) => (issue.code === 'invalid_key' ? RULES.dimensionName : RULES.dimensions) },
  )
  .check(z.refine((value) => Object.keys(value).length <= USAGE_LIMITS.dimensions, RULES.dimensions))

/**
 * One usage line (`POST v1/usage`): `amount` units of `metric` for `subject`, recorded between `start` and `end`.
 * Unknown fields are ignored, not refused, so a newer SDK can add informational ones.
 */
export const usageLineSchema = z
  .object(
    {
      id: z.string({ error: RULES.id }).check(z.regex(LINE_ID_PATTERN, RULES.id)),
      subject: z.optional(z.string({ error: RULES.subject }).check(z.regex(SUBJECT_PATTERN, RULES.subject))),
      metric: z
        .string({ error: RULES.metric })
        .check(z.minLength(1, RULES.metric), z.maxLength(USAGE_LIMITS.metric, RULES.metric)),
      amount: z
        .number({ error: RULES.amount })
        .check(z.gte(0, RULES.amount), z.lte(USAGE_LIMITS.amount, RULES.amount)),
      start: time,
      end: time,
      /** The resource the usage is for (`workspace:ws_9`), for a metric counted per resource. */
      resource: z.optional(
        z.string({ error: RULES.resource }).check(z.regex(RESOURCE_PATTERN, RULES.resource)),
      ),
      dimensions: z.optional(z.pipe(z.custom<object>(isPlainObject, RULES.dimensions), dimensionsSchema)),
      properties: z.optional(
        z
          .record(z.string(), z.unknown(), { error: RULES.properties })
          .check(
            z.refine(
              (value) => (jsonBytes(value) ?? Infinity) <= USAGE_LIMITS.propertiesBytes,
              RULES.properties,
            ),
          ),
      ),
    },
    { error: RULES.object },
  )
  .check(z.refine((line) => line.end >= line.start, { message: RULES.order, path: ['end'] }))

/** A usage line as it is on the wire. */
export type WireUsageLine = z.output<typeof usageLineSchema>

const batchId = z.optional(z.string().check(z.regex(idPattern(USAGE_LIMITS.batchId), RULES.batch)))

/**
 * A batch as a server first reads it: an id and an array of at most `USAGE_LIMITS.batchLines` lines, each judged
 * on its own afterwards ({@link usageLineSchema}), so one bad line is refused alone. A body that is not this shape
 * is refused as a whole.
 */
export const usageBatchEnvelopeSchema = z.object({
  batch: batchId,
  lines: z.array(z.unknown()).check(z.maxLength(USAGE_LIMITS.batchLines)),
})

/** The whole batch, lines included: what `/openapi.json` documents for `POST v1/usage`. */
export const usageBatchSchema = z.object({
  batch: batchId,
  lines: z.array(usageLineSchema).check(z.maxLength(USAGE_LIMITS.batchLines)),
})

/** The first problem zod finds in a line, in the same form as {@link usageLineProblem}. */
export function usageLineSchemaProblem(value: unknown): UsageLineProblem | undefined {
  const parsed = usageLineSchema.safeParse(value)
  if (parsed.success) return undefined
  const issue = parsed.error.issues[0]!
  return { path: issue.path.map(String).join('.'), message: issue.message }
}
