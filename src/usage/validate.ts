import { EntitlementError } from '../core/errors.js'
import { RESOURCE_PATTERN, USAGE_LIMITS, USAGE_LINE_RULES } from '../protocol/usage-rules.js'

/*
 * What `record()` refuses at the door, by the protocol's rules: misuse throws `usage_invalid` and counts nothing.
 * What only the sealed line can tell (a subject the wire cannot carry) is checked once per line, at sealing, and
 * sets that line aside alone (`line.ts`).
 */

const encoder = /*@__PURE__*/ new TextEncoder()
// Read once, at load, in calls marked pure: a bare property read at the top of a module is kept by bundlers (it might
// throw), and with it the usage rules, in a browser app that never meters.
const MAX_METRIC = /*@__PURE__*/ (() => USAGE_LIMITS.metric)()
const MAX_AMOUNT = /*@__PURE__*/ (() => USAGE_LIMITS.amount)()

function refuse(field: 'metric' | 'amount'): never {
  throw new EntitlementError('usage_invalid', `${field} must be ${USAGE_LINE_RULES[field]}`)
}

/** Throws `usage_invalid` unless `metric` and `amount` are what a usage line can carry. Small: it inlines. */
export function checkRecord(metric: unknown, amount: unknown): void {
  if (typeof metric !== 'string' || metric.length === 0 || metric.length > MAX_METRIC) refuse('metric')
  // `!(amount <= MAX)` is also true for NaN.
  if (typeof amount !== 'number' || amount < 0 || !(amount <= MAX_AMOUNT)) refuse('amount')
}

/** Throws `usage_invalid` unless `resource` is what a usage line can carry: `kind:id`. */
export function checkResource(resource: unknown): void {
  if (typeof resource !== 'string' || !RESOURCE_PATTERN.test(resource))
    throw new EntitlementError('usage_invalid', `resource must be ${USAGE_LINE_RULES.resource}`)
}

function cleanDimensions(dimensions: unknown): Record<string, string> | undefined {
  if (typeof dimensions !== 'object' || dimensions === null || Array.isArray(dimensions))
    throw new EntitlementError('usage_invalid', `dimensions must be ${USAGE_LINE_RULES.dimensions}`)
  const names = Object.keys(dimensions)
  if (names.length > USAGE_LIMITS.dimensions)
    throw new EntitlementError('usage_invalid', `dimensions must be ${USAGE_LINE_RULES.dimensions}`)
  if (names.length === 0) return undefined
  // A null-prototype copy: a dimension named __proto__ stays a dimension.
  const clean = Object.create(null) as Record<string, string>
  for (const name of names) {
    if (name.length === 0 || name.length > USAGE_LIMITS.dimensionName)
      throw new EntitlementError(
        'usage_invalid',
        `dimension ${name.slice(0, 32)}…: ${USAGE_LINE_RULES.dimensionName}`,
      )
    const value = (dimensions as Record<string, unknown>)[name]
    if (typeof value !== 'string' || value.length > USAGE_LIMITS.dimensionValue)
      throw new EntitlementError(
        'usage_invalid',
        `dimension ${name} must be ${USAGE_LINE_RULES.dimensionValue}`,
      )
    clean[name] = value
  }
  return clean
}

function cleanProperties(properties: unknown): Record<string, unknown> {
  let json: string | undefined
  try {
    json = JSON.stringify(properties)
  } catch {
    json = undefined
  }
  if (
    json === undefined ||
    typeof properties !== 'object' ||
    properties === null ||
    Array.isArray(properties) ||
    encoder.encode(json).length > USAGE_LIMITS.propertiesBytes
  )
    throw new EntitlementError('usage_invalid', `properties must be ${USAGE_LINE_RULES.properties}`)
  // Copied through JSON: a later change to the app's object cannot change a queued line.
  return JSON.parse(json) as Record<string, unknown>
}

/** Checks and copies what a record carries besides the amount; throws `usage_invalid`, counting nothing. */
export function cleanRecordExtras(
  dimensions: unknown,
  properties: unknown,
): { dimensions: Record<string, string> | undefined; properties: Record<string, unknown> | undefined } {
  return {
    dimensions: dimensions === undefined ? undefined : cleanDimensions(dimensions),
    properties: properties === undefined ? undefined : cleanProperties(properties),
  }
}
