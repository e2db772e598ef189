/*
 * Credits: prepaid balances made of grants, burned in one order. Written once, here: the SDK burns against a
 * token's snapshot with these functions, and a license server burns its ledger with the same ones (they are public
 * in `entitle/protocol`), so the two can never take credits from different grants.
 */

/** What a grant is, for the burn order: promotional credits go first, then allowances, then what was paid for. */
export type CreditCategory = 'promotional' | 'allowance' | 'paid'

const CATEGORY_RANK: Readonly<Record<CreditCategory, number>> = { promotional: 0, allowance: 1, paid: 2 }

/** One grant as the burn order reads it. Times in any one unit (the token says seconds, the SDK milliseconds). */
export interface BurnableGrant {
  readonly id: string
  /** What is left of it. */
  readonly remaining: number
  /** Lower burns first. Default 0. */
  readonly priority?: number | undefined
  /** Default `paid`. */
  readonly category?: CreditCategory | undefined
  /** Not spendable before this moment. */
  readonly startsAt?: number | undefined
  /** Worth nothing from this moment on (exclusive: at `expiresAt` it is gone). */
  readonly expiresAt?: number | undefined
}

/**
 * The burn order: priority (lower first), then the earliest expiry (a grant that never expires last), then
 * promotional before allowance before paid, then the earliest start (none first), then the id. A total order, so
 * every party that sorts the same grants burns them the same way.
 */
export function compareBurnOrder(a: BurnableGrant, b: BurnableGrant): number {
  const priority = (a.priority ?? 0) - (b.priority ?? 0)
  if (priority !== 0) return priority
  const aEnd = a.expiresAt ?? Number.POSITIVE_INFINITY
  const bEnd = b.expiresAt ?? Number.POSITIVE_INFINITY
  if (aEnd !== bEnd) return aEnd < bEnd ? -1 : 1
  const category = CATEGORY_RANK[a.category ?? 'paid'] - CATEGORY_RANK[b.category ?? 'paid']
  if (category !== 0) return category
  const aStart = a.startsAt ?? Number.NEGATIVE_INFINITY
  const bStart = b.startsAt ?? Number.NEGATIVE_INFINITY
  if (aStart !== bStart) return aStart < bStart ? -1 : 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

/**
 * Whether a grant can be spent at `at`: started, and not expired. Expiry is read, never swept: a grant past its
 * end is worth nothing at that moment, whatever a job has or has not done.
 */
export function isSpendable(grant: BurnableGrant, at: number): boolean {
  return (
    (grant.startsAt === undefined || at >= grant.startsAt) &&
    (grant.expiresAt === undefined || at < grant.expiresAt)
  )
}

/**
 * What the grants hold that can be spent at `at`. Indexed loops here and in `nextExpiry`, run on every decision of
 * a costed feature: the read model's grants are a frozen array, and V8 (Node 20) does not inline a `for…of` over one.
 */
export function spendableAt(grants: readonly BurnableGrant[], at: number): number {
  let sum = 0
  for (let i = 0; i < grants.length; i++) {
    const grant = grants[i]!
    if (grant.remaining > 0 && isSpendable(grant, at)) sum += grant.remaining
  }
  return sum
}

/** One grant's part of a burn. */
export interface BurnTake {
  readonly id: string
  readonly amount: number
}

/**
 * How `amount` credits burn at `at`: from each spendable grant in the burn order, as much as it holds, until the
 * amount is covered. `short` is what no grant covered (an overdraft, when the plan allows one).
 *
 * @example
 * ```ts
 * const grants = [
 *   { id: 'pack', remaining: 500, category: 'paid' },
 *   { id: 'promo', remaining: 50, category: 'promotional', expiresAt: 1_800_000_000 },
 * ]
 * planBurn(grants, 80, 1_700_000_000) // { takes: [{ id: 'promo', amount: 50 }, { id: 'pack', amount: 30 }], short: 0 }
 * ```
 */
export function planBurn(
  grants: readonly BurnableGrant[],
  amount: number,
  at: number,
): { readonly takes: BurnTake[]; readonly short: number } {
  const takes: BurnTake[] = []
  let left = amount
  for (const grant of [...grants].sort(compareBurnOrder)) {
    if (left <= 0) break
    if (!(grant.remaining > 0) || !isSpendable(grant, at)) continue
    const take = Math.min(grant.remaining, left)
    takes.push({ id: grant.id, amount: take })
    left -= take
  }
  return { takes, short: Math.max(0, left) }
}

/** The first moment after `at` at which a spendable grant with credits left expires, if any. */
export function nextExpiry(grants: readonly BurnableGrant[], at: number): number | undefined {
  let next: number | undefined
  for (let i = 0; i < grants.length; i++) {
    const grant = grants[i]!
    const end = grant.expiresAt
    if (end === undefined || !(grant.remaining > 0) || !isSpendable(grant, at)) continue
    if (next === undefined || end < next) next = end
  }
  return next
}

/**
 * A credit amount to a billionth: sums of fractional prices (1.3 credits per 1 000 tokens) are kept free of the
 * last-digit noise of binary fractions, so a balance reads 494.8, not 494.79999999999995.
 */
export const roundCredits = (value: number): number => Math.round(value * 1e9) / 1e9

/** The credits `units` of a costed feature or metric cost: `amount` credits per `per` units. */
export function creditCost(cost: { readonly amount: number; readonly per: number }, units: number): number {
  return roundCredits(cost.per === 1 ? units * cost.amount : (units * cost.amount) / cost.per)
}
