/*
 * Protocol v1 between the SDK and a license server, defined once: the usage wire format and its limits, the id
 * pattern, the never-ending window, the month arithmetic, the credits' burn order and the signers. The SDK checks a usage line against
 * these rules before it sends it, and the reference server validates with the same schemas and publishes them in
 * its `/openapi.json`: neither side restates a limit, so the two cannot disagree about what a line may be.
 * Public as `entitle/protocol`, for anyone writing a license server of their own.
 */

export type { BurnableGrant, BurnTake, CreditCategory } from '../core/credits.js'
export {
  compareBurnOrder,
  creditCost,
  isSpendable,
  nextExpiry,
  planBurn,
  roundCredits,
  spendableAt,
} from '../core/credits.js'
export type { VersionedClaim } from '../core/format-version.js'
export { FORMAT_VERSIONS, formatVersionFor } from '../core/format-version.js'
export { addMonths, currentWindowEnd } from '../core/period.js'
export type { SignOptions } from './sign.js'
export { describeClaimIssues, signEntitlementToken, signLeaseToken, signRevocationList } from './sign.js'
export type {
  UsageBatchAnswer,
  UsageLineAnswer,
  UsageLineProblem,
  UsageRefusalCode,
} from './usage-rules.js'
export {
  formatUsageLineProblem,
  idPattern,
  NEVER,
  SUBJECT_PATTERN,
  USAGE_LIMITS,
  USAGE_LINE_RULES,
  usageLineProblem,
} from './usage-rules.js'
export type { WireUsageLine } from './usage-schema.js'
export {
  usageBatchEnvelopeSchema,
  usageBatchSchema,
  usageLineSchema,
  usageLineSchemaProblem,
} from './usage-schema.js'
