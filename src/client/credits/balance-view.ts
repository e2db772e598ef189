import { isSpendable, nextExpiry, planBurn, roundCredits, spendableAt } from '../../core/credits.js'
import type { Entitlements } from '../../core/entitlements.js'
import type { CreditBook } from './credit-book.js'
import type { CreditBalanceView, GrantView } from './credit-types.js'

/**
 * A customer's balance of one credit type now: the snapshot's grants, less what this client spent and holds since
 * it, taken from them in the burn order (the server will have burned them so, or in an order that differs only
 * where a grant expired in between, which the next snapshot settles).
 */
export function balanceView(
  /** What this client spent and holds since the snapshot: nothing without metering. */
  book: CreditBook | undefined,
  key: string,
  entitlements: Entitlements,
  type: string,
  now: number,
): CreditBalanceView | undefined {
  const balance = entitlements.credits.get(type)
  if (balance === undefined) return undefined
  const spent = book?.spent(key, entitlements, balance, now) ?? 0
  const held = book?.held(key, type, now) ?? 0
  const { takes } = planBurn(balance.grants, spent + held, now)
  const taken = new Map(takes.map((take) => [take.id, take.amount]))
  const grants: GrantView[] = balance.grants.map((grant) =>
    Object.freeze({
      id: grant.id,
      category: grant.category,
      priority: grant.priority,
      startsAt: grant.startsAt,
      expiresAt: grant.expiresAt,
      atSnapshot: grant.remaining,
      remaining:
        grant.expiresAt !== undefined && now >= grant.expiresAt
          ? 0
          : roundCredits(grant.remaining - (taken.get(grant.id) ?? 0)),
    }),
  )
  const offline = balance.offline
  return Object.freeze({
    type,
    available: roundCredits(spendableAt(balance.grants, now) - spent - held),
    held,
    spentSinceSnapshot: spent,
    overdraft: balance.overdraft,
    grants: Object.freeze(grants),
    nextExpiry: nextExpiry(
      balance.grants.filter(
        (grant) => isSpendable(grant, now) && (taken.get(grant.id) ?? 0) < grant.remaining,
      ),
      now,
    ),
    asOf: balance.asOf,
    age: now - balance.asOf,
    offlineBound:
      offline === undefined
        ? undefined
        : Object.freeze({ ...offline, offline: now - balance.asOf > offline.afterMs }),
  })
}
