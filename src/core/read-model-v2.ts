import type { CreditBalance, FeatureClaim, PerResource, Pool } from './claims.js'
import { compareBurnOrder } from './credits.js'
import {
  type CreditBalanceModel,
  type CreditCostModel,
  type FeaturePer,
  type FeaturePool,
  intern,
  key,
  layoutFor,
  NO_COSTS,
  NO_CREDITS_OR_COSTS,
  NO_POOLS,
  seconds,
} from './entitlements.js'
import { frozenMap } from './frozen-map.js'

/*
 * The read model of what only format version 2 grants (`entitlements.ts` has the rest): a feature's grants per
 * resource, the pools features float in, credit balances and what things cost. Loaded with the rest of version 2's
 * code (`load-version-2.ts`).
 */

/** A per-resource feature's grants as the decision reads them. */
export function perModel(per: PerResource, accountCap: FeatureClaim['cap']): FeaturePer {
  const ids = Object.keys(per.resources ?? {})
  const grants = ids.map((id) => {
    const grant = per.resources![id]!
    return Object.freeze({
      enabled: grant.enabled,
      limit: grant.limit,
      capLimit: grant.cap?.limit,
      used: grant.cap?.used ?? 0,
    })
  })
  const cap = per.cap
  return Object.freeze({
    kind: per.kind,
    enabled: per.enabled !== false,
    limit: per.limit,
    cap:
      cap === undefined
        ? undefined
        : Object.freeze({
            limit: cap.limit,
            // The account's window when the feature has a cap (the schema requires that or a period here).
            period: accountCap?.period ?? cap.period!,
            resetsAt: seconds(accountCap?.resetsAt ?? cap.resetsAt),
            soft: cap.soft === true,
            ceiling: cap.ceiling,
            thresholds: cap.thresholds === undefined ? undefined : Object.freeze([...cap.thresholds]),
          }),
    // Keyed as a check names a resource (`kind:id`): the lookup needs no string made from the check's.
    resources: frozenMap(
      ids.map((id) => `${per.kind}:${id}`),
      grants,
      layoutFor,
    ),
  })
}

function poolModel(name: string, pool: Pool): FeaturePool {
  return intern(key('pool', [name, pool]), () =>
    Object.freeze({
      name,
      seats: pool.seats,
      holder: pool.holder,
      ttlMs: pool.ttl * 1000,
      heartbeatMs: pool.heartbeat * 1000,
      revivalMs: (pool.revival ?? 0) * 1000,
      graceMs: (pool.grace ?? 0) * 1000,
      borrow:
        pool.borrow === undefined
          ? undefined
          : Object.freeze({ maxMs: pool.borrow.max * 1000, reserve: pool.borrow.reserve ?? 0 }),
    }),
  )
}

/** A credit type's balance as the engine reads it: times in milliseconds, grants sorted in the burn order once. */
function creditModel(type: string, balance: CreditBalance): CreditBalanceModel {
  const grants = balance.grants
    .map((grant) =>
      Object.freeze({
        id: grant.id,
        remaining: grant.remaining,
        priority: grant.priority ?? 0,
        category: grant.category ?? 'paid',
        startsAt: seconds(grant.startsAt),
        expiresAt: seconds(grant.expiresAt),
      }),
    )
    .sort(compareBurnOrder)
  return Object.freeze({
    type,
    grants: Object.freeze(grants),
    asOf: Math.round(balance.asOf * 1000),
    spent: balance.spent,
    overdraft: balance.overdraft ?? 0,
    offline:
      balance.offline === undefined
        ? undefined
        : Object.freeze({ afterMs: balance.offline.after * 1000, spend: balance.offline.spend }),
  })
}

/** Every credit type's balance, and every priced name's cost. */
export function creditsOf(credits: Record<string, CreditBalance>) {
  const types = Object.keys(credits)
  if (types.length === 0) return NO_CREDITS_OR_COSTS
  const costNames: string[] = []
  const costValues: CreditCostModel[] = []
  for (const type of types) {
    const costs = credits[type]!.costs ?? {}
    for (const name of Object.keys(costs)) {
      const cost = costs[name]!
      costNames.push(name)
      costValues.push(
        intern(key('cost', [type, cost]), () =>
          Object.freeze({ type, amount: cost.amount, per: cost.per ?? 1 }),
        ),
      )
    }
  }
  return {
    balances: frozenMap(
      types,
      types.map((type) => creditModel(type, credits[type]!)),
      layoutFor,
    ),
    costs: costNames.length === 0 ? NO_COSTS : frozenMap(costNames, costValues, layoutFor),
  }
}

/** A token's pools by name. */
export function poolsOf(pools: Record<string, Pool>): ReadonlyMap<string, FeaturePool> {
  const names = Object.keys(pools)
  if (names.length === 0) return NO_POOLS
  return frozenMap(
    names,
    names.map((name) => poolModel(name, pools[name]!)),
    layoutFor,
  )
}
