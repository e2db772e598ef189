/*
 * The rules of `ent.credits` that span more than one field, written once for the zod schema (`claims.ts`) and the
 * zod-free checker (`claims-check-v2.ts`: only a token of format version 2 has credits), so the two cannot
 * disagree. Each takes the claim as parsed so far.
 */

/** The parts of an `ent` claim the credit rules read. */
interface CreditClaim {
  readonly features: Readonly<Record<string, unknown>>
  readonly credits?: Readonly<Record<string, unknown>> | undefined
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null

function balances(ent: CreditClaim): [string, Record<string, unknown>][] {
  if (!isObject(ent.credits)) return []
  return Object.entries(ent.credits).filter((entry): entry is [string, Record<string, unknown>] =>
    isObject(entry[1]),
  )
}

/** The first credit type in which two grants share an id: a burn must name one grant. */
export function duplicateGrant(ent: CreditClaim): string | undefined {
  for (const [type, balance] of balances(ent)) {
    const seen = new Set<unknown>()
    for (const grant of Array.isArray(balance.grants) ? balance.grants : []) {
      const id = isObject(grant) ? grant.id : undefined
      if (seen.has(id)) return type
      seen.add(id)
    }
  }
  return undefined
}

/** The first feature or metric that two credit types both price: a use must burn one balance. */
export function costedTwice(ent: CreditClaim): string | undefined {
  const priced = new Set<string>()
  for (const [, balance] of balances(ent)) {
    for (const name of Object.keys(isObject(balance.costs) ? balance.costs : {})) {
      if (priced.has(name)) return name
      priced.add(name)
    }
  }
  return undefined
}

/**
 * The first credit type named like a feature. A credit type's spending is metered under its own name (a usage
 * line of the credits burned), so it cannot also be a feature's metric.
 */
export function typeNamedLikeFeature(ent: CreditClaim): string | undefined {
  if (!isObject(ent.features)) return undefined
  for (const [type] of balances(ent)) if (Object.hasOwn(ent.features, type)) return type
  return undefined
}
