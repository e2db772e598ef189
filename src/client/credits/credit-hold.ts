import type { CreditHold } from './credit-types.js'

/**
 * A hold as the app holds it: `commit(units)` and `release()` each settle it once (a second call, of either, gets
 * the first one's promise), through `settle(units used)`.
 */
export function createHold(held: {
  readonly id: string
  readonly feature: string
  readonly units: number
  readonly price: number
  readonly expiresAt: number
  readonly settle: (used: number) => Promise<void>
}): CreditHold {
  const { units } = held
  let settled: Promise<void> | undefined
  return Object.freeze({
    id: held.id,
    feature: held.feature,
    amount: units,
    credits: held.price,
    expiresAt: held.expiresAt,
    commit(used = units) {
      if (!(typeof used === 'number' && Number.isFinite(used) && used >= 0 && used <= units))
        return Promise.reject(new TypeError(`commit between 0 and the ${units} units held`))
      settled ??= held.settle(used)
      return settled
    },
    release() {
      settled ??= held.settle(0)
      return settled
    },
  })
}
