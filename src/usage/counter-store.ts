import { withGetters } from '../platform/with-getters.js'

/**
 * Where `consume()` counts a metered cap. Without one, the client counts in its own process (one instance). A
 * fleet of instances shares one through `entitle/redis`, so a cap of 10 000 a month holds across all of them.
 * Implementations must make `consume` atomic across everyone sharing the store.
 */
export interface UsageCounterStore {
  /**
   * Adds `amount` to the counter `key` unless the result would pass `limit`; with `force`, adds regardless (units
   * already used while the store could not be reached). The counter starts from `baseline` (the server's usage
   * snapshot in the token) and is never taken below it. It expires at `expiresAt` (epoch ms; `undefined`: never).
   *
   * @returns whether the amount was added, and the counter after (or as it stands, when it was not).
   */
  consume(request: UsageCounterRequest): Promise<{ readonly allowed: boolean; readonly used: number }>
  /**
   * Optional: claims the one-time `key` for this instance, until `expiresAt` (epoch ms; `undefined`: for good).
   * `true` for the first instance to claim it, `false` for every other. A usage alert (`threshold`) fires on the
   * instance that claims it, once for the whole fleet.
   */
  claim?(key: string, expiresAt: number | undefined): Promise<boolean>
  /**
   * Optional: {@link consume} over several counters in one atomic step: each amount is added only if none would
   * pass its limit, else nothing is. A per-resource cap counts its resource and its account this way across a
   * fleet; the client puts one customer's keys in one Redis Cluster hash slot (`{customer}`).
   *
   * @returns whether the amounts were added, and each counter after (or as it stands, when they were not).
   */
  consumeAll?(
    requests: readonly UsageCounterRequest[],
  ): Promise<{ readonly allowed: boolean; readonly used: readonly number[] }>
  /**
   * Optional: spends or holds credits in one atomic step, so a fleet never spends a balance twice. The counter
   * `key` counts credits spent in all (never below `baseline`); beside it the store keeps the live holds, each
   * ending by itself when its time is up. Spending (or holding) `amount` is allowed when the count, the live holds
   * and the amount stay within `limit`. `settle` ends a hold first (`amount` then is what it cost: forced).
   * Credits (`client.reserve()`, `consume()` of a costed feature) need it on a fleet store.
   *
   * @returns whether it was allowed, the count after, and what the live holds add up to after.
   */
  spendCredits?(
    request: CreditSpendRequest,
  ): Promise<{ readonly allowed: boolean; readonly spent: number; readonly held: number }>
}

/** One atomic step of {@link UsageCounterStore.spendCredits}. */
export interface CreditSpendRequest {
  /** The customer's credit type, made into one key by the client. */
  readonly key: string
  /** Credits spent now (or held, with `hold`); negative gives back what was spent (forced). */
  readonly amount: number
  /** What the count and the live holds together may reach: spent at the snapshot, the balance and any overdraft. */
  readonly limit: number
  /** Spent in all at the snapshot: the count never starts below it. */
  readonly baseline: number
  /**
   * Sets `amount` aside under `id` for `ttlMs` instead of spending it. The store's own clock times it (Redis's), so
   * instances whose clocks disagree agree on when it ends.
   */
  readonly hold?: { readonly id: string; readonly ttlMs: number } | undefined
  /** The id of a hold to end before anything else (committed or released). */
  readonly settle?: string | undefined
  /** Spend regardless of the limit: work already done (a hold's commit). */
  readonly force?: boolean | undefined
}

/** One atomic step of a {@link UsageCounterStore}. */
export interface UsageCounterRequest {
  /** Customer, metric and window, already made into one key by the client. */
  readonly key: string
  readonly amount: number
  readonly limit: number
  readonly baseline: number
  readonly expiresAt: number | undefined
  /** Add even past the limit: reconciling units consumed while the store was out of reach. */
  readonly force?: boolean
}

/** The in-memory store, which can also be used synchronously. */
export interface MemoryUsageStore extends UsageCounterStore {
  /** `consume`, synchronously: in one process nothing needs to wait. */
  consumeNow(request: UsageCounterRequest): { readonly allowed: boolean; readonly used: number }
  /** The counter of `key` as it stands (no baseline applied), or `undefined`. Synchronous. */
  peek(key: string): number | undefined
  readonly size: number
}

/**
 * A {@link UsageCounterStore} in this process's memory: the semantics of a shared store, for one instance and
 * for tests. Expired counters are dropped when next touched.
 *
 * @example
 * ```ts
 * const client = createEntitlements({ ...options, fleet: { store: createMemoryUsageStore() } })
 * ```
 */
export function createMemoryUsageStore(now: () => number = Date.now): MemoryUsageStore {
  const counters = new Map<string, { used: number; expiresAt: number | undefined }>()
  function consumeNow({ key, amount, limit, baseline, expiresAt, force }: UsageCounterRequest) {
    let counter = counters.get(key)
    if (counter !== undefined && counter.expiresAt !== undefined && now() >= counter.expiresAt) {
      counters.delete(key)
      counter = undefined
    }
    const used = Math.max(counter?.used ?? baseline, baseline)
    if (!force && used + amount > limit) return { allowed: false, used }
    if (counter === undefined) counters.set(key, { used: used + amount, expiresAt })
    else {
      counter.used = used + amount
      counter.expiresAt = expiresAt
    }
    return { allowed: true, used: used + amount }
  }
  const claimed = new Map<string, number | undefined>()
  const holds = new Map<string, Map<string, { amount: number; expiresAt: number }>>()
  /** The counter as it stands for `request`: expired ones count from the baseline. */
  function current({ key, baseline }: UsageCounterRequest): number {
    const counter = counters.get(key)
    const live = counter !== undefined && (counter.expiresAt === undefined || now() < counter.expiresAt)
    return Math.max(live ? counter.used : baseline, baseline)
  }
  const store: Omit<MemoryUsageStore, 'size'> = {
    consumeNow,
    async consume(request) {
      return consumeNow(request)
    },
    async consumeAll(requests) {
      const fits = requests.every(
        (request) => request.force || current(request) + request.amount <= request.limit,
      )
      if (!fits) return { allowed: false, used: requests.map(current) }
      return { allowed: true, used: requests.map((request) => consumeNow({ ...request, force: true }).used) }
    },
    async spendCredits({ key, amount, limit, baseline, hold, settle, force }) {
      let live = holds.get(key)
      if (live === undefined) {
        live = new Map()
        holds.set(key, live)
      }
      const at = now()
      for (const [id, held] of live) if (held.expiresAt <= at) live.delete(id)
      if (settle !== undefined) live.delete(settle)
      let held = 0
      for (const value of live.values()) held += value.amount
      const spent = Math.max(counters.get(key)?.used ?? baseline, baseline)
      if (!force && spent + held + amount > limit) return { allowed: false, spent, held }
      if (hold !== undefined) {
        live.set(hold.id, { amount, expiresAt: at + hold.ttlMs })
        return { allowed: true, spent, held: held + amount }
      }
      counters.set(key, { used: spent + amount, expiresAt: undefined })
      return { allowed: true, spent: spent + amount, held }
    },
    async claim(key, expiresAt) {
      const held = claimed.get(key)
      if (claimed.has(key) && (held === undefined || now() < held)) return false
      claimed.set(key, expiresAt)
      return true
    },
    peek(key) {
      const counter = counters.get(key)
      if (counter === undefined || (counter.expiresAt !== undefined && now() >= counter.expiresAt))
        return undefined
      return counter.used
    },
  }
  return withGetters(store, { size: () => counters.size })
}
