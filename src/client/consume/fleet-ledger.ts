import type { UsageCounterRequest, UsageCounterStore } from '../../usage/counter-store.js'
import { createBoundedCache } from '../tokens/bounded-cache.js'

/** What this instance knows of one fleet counter: the count it last saw, and what it used while it was away. */
export interface FleetView {
  /** The counter as the store last answered it. */
  used: number
  /** When the store last answered it (epoch ms); `undefined`: never, `used` is the token's snapshot. */
  seenAt: number | undefined
  /** Units this instance consumed while the store was out of reach, not yet added to it. */
  owed: number
  /** When this instance first found the store out of reach, in the outage going on; `undefined`: none. */
  outageFrom: number | undefined
}

/**
 * The fleet's outage ledger: per counter, the last count the store answered and what this instance consumed while
 * the store could not be reached (`onStoreError: 'local'`). Back from an outage, the owed units go to the store
 * first (forced: they were used), so the fleet's count includes them before anything else is decided.
 */
export function createFleetLedger(
  store: UsageCounterStore,
  options: {
    readonly maxCounters: number
    /** How many instances share the store. */
    readonly instances: number
    /** The oldest count an instance may count from in an outage. */
    readonly viewMaxAgeMs: number
    readonly now: () => number
  },
) {
  /** One object per counter, changed in place: concurrent consumes see each other's outage counts. */
  const views = createBoundedCache<FleetView>({ max: options.maxCounters })

  return {
    /** The view of `counterKey`, made from the token's snapshot (`baseline`) the first time. */
    view(counterKey: string, baseline: number): FleetView {
      let view = views.get(counterKey)
      if (view === undefined) {
        view = { used: baseline, seenAt: undefined, owed: 0, outageFrom: undefined }
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
      view.seenAt = options.now()
      view.outageFrom = undefined
      return result
    },

    /**
     * The store is out of reach: decides locally, from a count the store gave within `viewMaxAgeMs` before the
     * outage began (none, or an older one, and it allows nothing: an instance that never saw the fleet's count
     * cannot tell what is left), and within this instance's share of what that count left, `1 / instances` of it. So the fleet passes its cap by
     * at most what it consumed in the `viewMaxAgeMs` before the outage (the views' staleness), when `instances` is
     * at least the number of instances. Returns the count the decision is made on and whether `amount` fits.
     */
    countLocally(
      view: FleetView,
      baseline: number,
      amount: number,
      limit: number,
    ): { readonly allowed: boolean; readonly used: number } {
      const seen = Math.max(view.used, baseline)
      const used = seen + view.owed
      view.outageFrom ??= options.now()
      const fresh = view.seenAt !== undefined && view.outageFrom - view.seenAt <= options.viewMaxAgeMs
      const share = Math.floor(Math.max(0, limit - seen) / options.instances)
      if (!fresh || view.owed + amount > share || used + amount > limit) return { allowed: false, used }
      view.owed += amount
      return { allowed: true, used: used + amount }
    },
  }
}

export type FleetLedger = ReturnType<typeof createFleetLedger>
