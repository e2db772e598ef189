import { isAscending } from './ascending.js'
import {
  array,
  boolean,
  type ClaimProblem,
  count,
  literal,
  MAX_DATE,
  MAX_NAME,
  name,
  names,
  number,
  numericDate,
  object,
  optional,
  type Problems,
  type Rule,
  record,
  required,
  type Stack,
  soft,
  string,
  union,
  url,
} from './claim-rules.js'
import type { EntitlementTokenClaims } from './claims.js'
import { FORMAT_VERSIONS, mentionsVersion2 } from './format-version.js'
import { version2 } from './version-2-code.js'

export type { ClaimProblem } from './claim-rules.js'

/*
 * The entitlement token's claims checked without zod: the verifier's path, in Node and in browser bundles. The zod
 * schema in `claims.ts` stays the one statement of the format (JSON Schema, CLI, server, `entitle/testing`); this
 * is the same rules written out by hand, a fifth of zod's time and none of its bytes. A differential test
 * (`test/unit/claims-check.test.ts`) holds the two together: on generated valid and invalid claims, the same
 * verdict, the same output (unknown keys dropped, URLs trimmed), and the same problems at the same paths.
 *
 * The rules here are those of a token that says nothing of format version 2 (no `per`, pool or credits, and not
 * `v: 2`): most tokens. The rest (`claims-check-v2.ts`) is code loaded when a token says any of it
 * (`load-version-2.ts`), made of these: a browser app whose customers need nothing of version 2 never loads it.
 */

const upgradeHint = object({ plan: optional(name), addon: optional(name), url: optional(url) })
const term = object({
  expiresAt: optional(numericDate),
  graceEndsAt: optional(numericDate),
  trialEndsAt: optional(numericDate),
})
const regionPolicy = object({ allow: optional(names), deny: optional(names) })
const devicePolicy = object({ max: optional(count), fingerprints: optional(names) })
export const thresholds = array(number(1, 1000, true), 1, 10)

/** The rules of a soft limit, in the order claims.ts's refinements run (see `softLimitRules` there). */
export function softLimitProblems(
  value: Record<string, unknown>,
  limit: unknown,
  path: Stack,
  problems: Problems,
): void {
  if (!isAscending(value.thresholds as number[] | undefined))
    soft(problems, [...path, 'thresholds'], 'thresholds must be ascending, each once')
  if (value.ceiling !== undefined && value.soft !== true)
    soft(problems, [...path, 'ceiling'], 'a ceiling needs soft: true')
  if (value.ceiling !== undefined && limit !== undefined && !((value.ceiling as number) >= (limit as number)))
    soft(problems, [...path, 'ceiling'], 'the ceiling must be at least the limit')
  if (value.soft !== undefined && limit === undefined) soft(problems, [...path, 'soft'], 'soft needs a limit')
}

export const period = literal('hour', 'day', 'week', 'month', 'year', 'total')
const usageCap = object(
  {
    limit: required(count),
    period: required(period),
    used: required(number(0, undefined, false)),
    resetsAt: optional(numericDate),
    asOf: optional(number(0, MAX_DATE, false)),
    soft: optional(literal(true)),
    ceiling: optional(count),
    thresholds: optional(thresholds),
  },
  (cap, path, problems) => {
    if (cap.period !== 'total' && cap.resetsAt === undefined)
      soft(problems, [...path, 'resetsAt'], 'resetsAt is required unless period is "total"')
    softLimitProblems(cap, cap.limit, path, problems)
  },
)

/** A feature's fields of format version 1, in the order of `claims.ts` (version 2 adds `per` and `pool` after). */
export const featureFields = {
  enabled: optional(boolean),
  addon: optional(name),
  limit: optional(count),
  cap: optional(usageCap),
  term: optional(term),
  regions: optional(regionPolicy),
  roles: optional(names),
  upgrade: optional(upgradeHint),
  soft: optional(literal(true)),
  ceiling: optional(count),
  thresholds: optional(thresholds),
}
const plan = object({ id: required(name), name: optional(string(undefined, 256)), tier: optional(count) })

/**
 * The `ent` claim's fields of format version 1 with `feature` as a feature's rule, in the order of `claims.ts`
 * (version 2 adds `pools`, `pool` and `credits` after).
 */
export const entFields = (feature: Rule) => ({
  v: required(literal(...FORMAT_VERSIONS)),
  plan: required(plan),
  addons: optional(names),
  features: required(record(union(literal(true), feature))),
  term: optional(term),
  devices: optional(devicePolicy),
  regions: optional(regionPolicy),
  roles: optional(names),
  upgrade: optional(upgradeHint),
  upgrades: optional(record(upgradeHint)),
})

const nonEmpty = string(1)
/** The claims' rules with `ent` as the `ent` claim's rule. */
export const claimsRule = (ent: Rule) =>
  object({
    iss: required(nonEmpty),
    sub: required(name),
    aud: required(union(nonEmpty, array(nonEmpty, 1, undefined))),
    iat: required(numericDate),
    nbf: optional(numericDate),
    exp: required(numericDate),
    jti: required(string(1, MAX_NAME)),
    ent: required(ent),
  })

/** The claims of a token that says nothing of format version 2: its `v` is not 2, nor needed. */
const version1 = claimsRule(
  object(
    entFields(
      object(featureFields, (value, path, problems) => softLimitProblems(value, value.limit, path, problems)),
    ),
  ),
)

/**
 * Checks a token payload against the claim format: the validated claims (unknown keys dropped), or every problem
 * found, in order, each with its path. A payload that says anything of format version 2 needs its code loaded
 * first (`loadVersion2()`, as the verifier does).
 */
export function checkClaims(
  payload: unknown,
):
  | { readonly claims: EntitlementTokenClaims; readonly problems?: undefined }
  | { readonly problems: ClaimProblem[] } {
  const problems: Problems = []
  const rules = mentionsVersion2(payload) ? version2().claims : version1
  const out = rules(payload, [], problems)
  return problems.length > 0
    ? { problems: problems.map(({ path, text }) => ({ path, text })) }
    : { claims: out as EntitlementTokenClaims }
}

/** Each problem as `path: what is wrong`, as the verifier's message gives it. */
export const formatClaimProblems = (problems: readonly ClaimProblem[]): string[] =>
  problems.map(({ path, text }) => `${path.map(String).join('.') || '(root)'}: ${text}`)
