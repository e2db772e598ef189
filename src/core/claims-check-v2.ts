import {
  array,
  boolean,
  count,
  literal,
  MAX_DATE,
  MAX_LIST,
  name,
  number,
  numericDate,
  object,
  optional,
  type Problems,
  record,
  required,
  type Stack,
  soft,
} from './claim-rules.js'
import {
  claimsRule,
  entFields,
  featureFields,
  period,
  softLimitProblems,
  thresholds,
} from './claims-check.js'
import { costedTwice, duplicateGrant, typeNamedLikeFeature } from './credit-rules.js'
import { needsVersion2, unknownPool } from './format-version.js'

/*
 * The claims check of a token that says anything of format version 2 (`claims-check.ts` has the rest, and why it
 * is apart): version 1's rules with a feature's `per` and `pool`, and the claim's `pools`, `pool` and `credits`.
 */

const resourceCap = object(
  {
    limit: required(count),
    period: optional(period),
    resetsAt: optional(numericDate),
    soft: optional(literal(true)),
    ceiling: optional(count),
    thresholds: optional(thresholds),
  },
  (cap, path, problems) => {
    if (cap.period !== undefined && cap.period !== 'total' && cap.resetsAt === undefined)
      soft(problems, [...path, 'resetsAt'], 'resetsAt is required unless period is "total"')
    softLimitProblems(cap, cap.limit, path, problems)
  },
)
const resourceGrant = object({
  enabled: optional(boolean),
  limit: optional(count),
  cap: optional(object({ limit: optional(count), used: optional(number(0, undefined, false)) })),
})
const perResource = object({
  kind: required(name),
  enabled: optional(boolean),
  limit: optional(count),
  cap: optional(resourceCap),
  resources: optional(record(resourceGrant)),
})

const pool = object(
  {
    seats: required(number(1, 1_000_000, true)),
    holder: required(literal('machine', 'process', 'user')),
    ttl: required(number(10, 86_400, true)),
    heartbeat: required(number(1, 86_400, true)),
    revival: optional(number(0, 604_800, true)),
    grace: optional(number(0, 86_400, true)),
    borrow: optional(
      object({ max: required(number(60, 31_536_000, true)), reserve: optional(number(0, undefined, true)) }),
    ),
  },
  (value, path, problems) => {
    if (!((value.heartbeat as number) < (value.ttl as number)))
      soft(problems, [...path, 'heartbeat'], 'heartbeat must be less than ttl')
    const reserve = (value.borrow as { reserve?: number } | undefined)?.reserve ?? 0
    if (!(reserve <= (value.seats as number)))
      soft(problems, [...path, 'borrow', 'reserve'], 'the borrow reserve cannot exceed the seats')
  },
)

const creditGrant = object({
  id: required(name),
  remaining: required(number(0, undefined, false)),
  priority: optional(number(0, 1000, true)),
  category: optional(literal('promotional', 'allowance', 'paid')),
  startsAt: optional(numericDate),
  expiresAt: optional(numericDate),
})
const creditBalance = object({
  grants: required(array(creditGrant, undefined, MAX_LIST)),
  asOf: required(number(0, MAX_DATE, false)),
  spent: required(number(0, undefined, false)),
  overdraft: optional(number(0, undefined, false)),
  offline: optional(
    object({ after: required(number(0, 31_536_000, true)), spend: required(number(0, undefined, false)) }),
  ),
  costs: optional(
    record(
      object({
        amount: required(number(0, undefined, false)),
        per: optional(number(1, 1_000_000_000, true)),
      }),
    ),
  ),
})

/** A per-resource feature's own rules, in the order claims.ts's refinements run. */
function perResourceProblems(value: Record<string, unknown>, path: Stack, problems: Problems): void {
  const per = value.per as { cap?: { period?: unknown } } | undefined
  if (per !== undefined && value.limit !== undefined)
    soft(problems, [...path, 'limit'], 'a per-resource feature has its numeric limit in per.limit')
  if (per?.cap !== undefined && (value.cap === undefined) !== (per.cap.period !== undefined))
    soft(
      problems,
      [...path, 'per', 'cap', 'period'],
      "per.cap has a period of its own exactly when the feature has no cap (else it counts in the cap's window)",
    )
}

const feature = object(
  { ...featureFields, per: optional(perResource), pool: optional(name) },
  (value, path, problems) => {
    softLimitProblems(value, value.limit, path, problems)
    perResourceProblems(value, path, problems)
  },
)
const ent = object(
  {
    ...entFields(feature),
    pools: optional(record(pool)),
    pool: optional(name),
    credits: optional(record(creditBalance)),
  },
  (value, path, problems) => {
    const versioned = value as { features: Record<string, unknown> }
    if (value.v !== 2 && needsVersion2(versioned))
      soft(problems, [...path, 'v'], 'per-resource features (per), pools and credits need v: 2')
    if (unknownPool(versioned) !== undefined)
      soft(problems, [...path, 'pools'], 'a pool named by ent.pool or a feature is not in ent.pools')
    if (duplicateGrant(versioned) !== undefined)
      soft(problems, [...path, 'credits'], 'a grant id appears twice in one credit type')
    if (costedTwice(versioned) !== undefined)
      soft(problems, [...path, 'credits'], 'a feature or metric costs credits of more than one type')
    if (typeNamedLikeFeature(versioned) !== undefined)
      soft(problems, [...path, 'credits'], 'a credit type has the name of a feature')
  },
)

/** The claims' rules for a token that says anything of format version 2. */
export const claimsV2 = claimsRule(ent)
