import { creditCost, roundCredits } from '../../core/credits.js'
import type { CreditBalanceModel, Entitlements } from '../../core/entitlements.js'
import { NEVER } from '../../protocol/usage-rules.js'
import type { MemoryUsageStore } from '../../usage/counter-store.js'
import type { UsageMeter } from '../../usage/meter.js'
import type { Reservations } from '../consume/reservations.js'
import { counterKeyOf } from '../usage-window.js'

/** A hold this client made: credits set aside until committed, released, or its time is up. */
interface HeldCredits {
  readonly amount: number
  readonly expiresAt: number
}

/** The key of a customer's count of one credit type: in the local counters, the reservations and a fleet store. */
export const creditCounterKey = (subject: string, type: string): string => counterKeyOf(subject, type, NEVER)

/**
 * What this client knows of its customers' credits beyond the token's snapshot: what it spent since the snapshot
 * (the usage of every costed feature and metric it recorded that the server had not counted when it read its
 * ledger, priced), what a crashed run may have spent, and the holds it made. A check of a costed feature subtracts
 * `counted()` from the snapshot's balance.
 */
export function createCreditBook(parts: {
  readonly meter: UsageMeter | undefined
  /** Without a meter: what consume() spent in this process, per credit type, counted from the snapshot's `spent`. */
  readonly localCounters: MemoryUsageStore | undefined
  readonly reservations: Reservations | undefined
}) {
  const { meter, localCounters, reservations } = parts
  /** Holds by customer key, credit type and hold id. */
  const holds = new Map<string, Map<string, Map<string, HeldCredits>>>()

  /** Credits spent here since the snapshot: the unreported usage of each name that costs this type, priced. */
  function spentSince(
    key: string,
    entitlements: Entitlements,
    balance: CreditBalanceModel,
    now: number,
  ): number {
    if (meter !== undefined) {
      let spent = 0
      // forEach, not for…of: the read model's map yields its entries from a generator, a pair each, on every consume.
      entitlements.costs.forEach((cost, name) => {
        if (cost.type !== balance.type) return
        const units = meter.unreported(key, name, now, balance.asOf)
        if (units > 0) spent += creditCost(cost, units)
      })
      return roundCredits(spent)
    }
    const here = localCounters?.peek(creditCounterKey(entitlements.subject, balance.type))
    return here === undefined ? 0 : Math.max(0, roundCredits(here - balance.spent))
  }

  /** The live holds of one customer's credit type; expired ones are dropped as they are met. */
  function live(key: string, type: string, now: number): Map<string, HeldCredits> | undefined {
    const byId = holds.get(key)?.get(type)
    if (byId === undefined) return undefined
    for (const [id, hold] of byId) if (hold.expiresAt <= now) byId.delete(id)
    return byId
  }

  function held(key: string, type: string, now: number): number {
    let sum = 0
    const byId = live(key, type, now)
    if (byId !== undefined) for (const hold of byId.values()) sum += hold.amount
    return sum
  }

  function spent(key: string, entitlements: Entitlements, balance: CreditBalanceModel, now: number): number {
    let sum = spentSince(key, entitlements, balance, now)
    if (reservations?.hasUnknown())
      sum += reservations.unknown(creditCounterKey(entitlements.subject, balance.type), now)
    return sum
  }

  return {
    /** Credits of `balance` that this client spent since its snapshot or holds: what a check subtracts. */
    counted(key: string, entitlements: Entitlements, balance: CreditBalanceModel, now: number): number {
      return spent(key, entitlements, balance, now) + held(key, balance.type, now)
    },

    /** Credits held now (live holds only). */
    held,

    /** Credits spent here since the snapshot, and what a crashed run may have spent: `counted()` less the holds. */
    spent,

    /** How many live holds a customer has of a credit type. */
    count: (key: string, type: string, now: number): number => live(key, type, now)?.size ?? 0,

    /** Sets `amount` credits aside under `id` until `expiresAt` (epoch ms). */
    hold(key: string, type: string, id: string, amount: number, expiresAt: number): void {
      let byType = holds.get(key)
      if (byType === undefined) {
        byType = new Map()
        holds.set(key, byType)
      }
      let byId = byType.get(type)
      if (byId === undefined) {
        byId = new Map()
        byType.set(type, byId)
      }
      byId.set(id, { amount, expiresAt })
    },

    /** Ends a hold (committed or released); `false` when it had already ended (its time was up). */
    end(key: string, type: string, id: string, now: number): boolean {
      const byId = live(key, type, now)
      const had = byId?.delete(id) === true
      if (byId?.size === 0) {
        holds.get(key)?.delete(type)
        if (holds.get(key)?.size === 0) holds.delete(key)
      }
      return had
    },
  }
}

export type CreditBook = ReturnType<typeof createCreditBook>
