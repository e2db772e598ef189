import type { UsageCounterRequest, UsageCounterStore } from '../../usage/counter-store.js'
import { createBoundedCache } from '../tokens/bounded-cache.js'

/** What this instance knows of one fleet counter: the count it last saw, and what it used while it was away. */
export interface FleetView {
  /** The counter as the store last answered it. */
  used: number
  /** Units this instance consumed while the store was out of reach, not yet added to it. */
  owed: number
}

/**
 * The fleet's outage ledger: per counter, the last count the store answered and what this instance consumed while
 * the store could not be reached (`onStoreError: 'local'`). Back from an outage, the owed units go to the store
 * first (forced: they were used), so the fleet's count includes them before anything else is decided.
 */
export function createFleetLedger(store: UsageCounterStore, maxCounters: number) {
  /** One object per counter, changed in place: concurrent consumes see each other's outage counts. */
  const views = createBoundedCache<FleetView>({ max: maxCounters })

  return {
    /** The view of `counterKey`, made from the token's snapshot (`baseline`) the first time. */
    view(counterKey: string, baseline: number): FleetView {
      let view = views.get(counterKey)
      if (view === undefined) {
        view = { used: baseline, owed: 0 }
        views.set(counterKey, view)
      }
      return view
    },

    /** Counts one unit of work against the store; after an outage, first what this instance used meanwhile. */
    async count(
      view: FleetView,
      request: Omit<UsageCounterRequest, 'force'>,
    ): Promise<{ readonly allowed: boolean; readonly used: number }> {
      const owed = view.owed
      if (owed > 0) {
        view.owed -= owed
        try {
          await store.consume({ ...request, amount: owed, force: true })
        } catch (error) {
          view.owed += owed
          throw error
        }
      }
      const result = await store.consume(request)
      view.used = result.used
      return result
    },

    /**
     * The store is out of reach: decides locally from the last count seen plus what was used since, and owes what
     * it allows. Returns the count the decision is made on and whether `amount` fits under `limit`.
     */
    countLocally(
      view: FleetView,
      baseline: number,
      amount: number,
      limit: number,
    ): { readonly allowed: boolean; readonly used: number } {
      const used = Math.max(view.used, baseline) + view.owed
      if (used + amount > limit) return { allowed: false, used }
      view.owed += amount
      return { allowed: true, used: used + amount }
    },
  }
}

export type FleetLedger = ReturnType<typeof createFleetLedger>
