import { creditCost, spendableAt } from '../../core/credits.js'
import type { Decision } from '../../core/decision.js'
import type { CreditBalanceModel, Entitlements } from '../../core/entitlements.js'
import { EntitlementError } from '../../core/errors.js'
import { NEVER } from '../../protocol/usage-rules.js'
import type { MemoryUsageStore, UsageCounterStore } from '../../usage/counter-store.js'
import type { UsageMeter } from '../../usage/meter.js'
import { type Answerer, fallbackDecision } from '../answers/answer.js'
import type { DecisionStats } from '../answers/decision-stats.js'
import type { ClientConfig } from '../config.js'
import type { Reservations } from '../consume/reservations.js'
import type { CheckContext, ErrorEvent } from '../options.js'
import type { Entry } from '../tokens/cache-entry.js'
import { type CreditBook, creditCounterKey } from './credit-book.js'
import { createHold } from './credit-hold.js'
import type { CreditHold, ReserveOptions, ReserveResult } from './credit-types.js'

const DEFAULT_TTL_MS = 60_000
const MAX_TTL_MS = 86_400_000
/** Live holds one customer may have of one credit type in one client: past it, reserve() waits for some to end. */
export const MAX_HOLDS = 10_000

type Spend = NonNullable<UsageCounterStore['spendCredits']>

/** The fleet store's request for a customer's credit type: its count starts at the snapshot's `spent`. */
function fleetRequest(entitlements: Entitlements, balance: CreditBalanceModel, now: number) {
  return {
    key: creditCounterKey(entitlements.subject, balance.type),
    limit: balance.spent + spendableAt(balance.grants, now) + balance.overdraft,
    baseline: balance.spent,
  }
}

/** What credit spending is made of. */
interface SpendingParts {
  readonly config: ClientConfig
  readonly answerer: Answerer
  readonly stats: DecisionStats
  readonly book: CreditBook
  readonly meter: UsageMeter | undefined
  readonly localCounters: MemoryUsageStore | undefined
  readonly reservations: Reservations | undefined
  readonly report: (during: ErrorEvent['during'], subject: string | undefined, error: unknown) => void
}

/** A decision made again from the store's numbers: the store's count and holds are what was spent and held. */
function fromStore(
  parts: SpendingParts,
  entry: Entry,
  key: string,
  feature: string,
  context: CheckContext,
  checked: Decision,
  result: { allowed: boolean; spent: number; held: number },
  balance: CreditBalanceModel,
  price: number,
): Decision {
  const { stats, answerer } = parts
  stats.uncount(checked)
  const before = result.spent - balance.spent + result.held - (result.allowed ? price : 0)
  const decision = answerer.answer(entry, key, feature, context, true, undefined, undefined, before)
  if (decision.allowed === result.allowed) return decision
  return stats.recount(decision, {
    ...decision,
    allowed: result.allowed,
    reason: result.allowed ? checked.reason : 'credits_exhausted',
  })
}

/** The store failed: reported, and the answer `onStoreError` gives (a local answer within this instance's share). */
function storeFailed(
  parts: SpendingParts,
  entitlements: Entitlements,
  checked: Decision,
  subject: string | undefined,
  error: unknown,
) {
  const { config, stats } = parts
  parts.report(
    'fleet',
    subject,
    new EntitlementError('store_unavailable', 'the shared usage store failed', { cause: error }),
  )
  const share = (checked.credits?.available ?? 0) / config.fleet!.instances
  if (config.fleet!.onStoreError === 'local' && checked.allowed && (checked.credits?.cost ?? 0) <= share)
    return checked
  return stats.recount(checked, {
    ...fallbackDecision(checked.feature, 'closed', entitlements.subject),
    plan: entitlements.plan.id,
    source: checked.source,
    age: checked.age,
  })
}

/** Records `units` of a costed feature as used: the meter sends them (the server burns), or the local count does. */
async function paid(
  parts: SpendingParts,
  entry: Entry,
  key: string,
  feature: string,
  units: number,
  price: number,
  type: string,
) {
  const { entitlements } = entry
  const { meter, answerer } = parts
  const counter = parts.reservations?.counter(entitlements.subject, type, NEVER)
  if (counter !== undefined) {
    await parts.reservations!.cover(counter, price, price)
    parts.reservations!.granted(counter, price)
  }
  if (meter !== undefined && units > 0)
    meter.record(key, feature, units, parts.config.platform.now(), entry, undefined, undefined)
  else
    parts.localCounters?.consumeNow({
      key: creditCounterKey(entitlements.subject, type),
      amount: price,
      limit: Number.MAX_SAFE_INTEGER,
      baseline: entitlements.credits.get(type)!.spent,
      expiresAt: undefined,
      force: true,
    })
  answerer.invalidate(entry, feature)
}

function checkOptions(options: ReserveOptions): { ttlMs: number; id: string } {
  const ttlMs = options.ttlMs ?? DEFAULT_TTL_MS
  if (!(Number.isInteger(ttlMs) && ttlMs >= 1000 && ttlMs <= MAX_TTL_MS))
    throw new TypeError(`ttlMs must be a whole number of milliseconds from 1000 to ${MAX_TTL_MS}`)
  const id = options.id ?? `hold-${crypto.randomUUID()}`
  if (typeof id !== 'string' || id.length === 0 || id.length > 128)
    throw new TypeError('a hold id is a string of 1 to 128 characters')
  return { ttlMs, id }
}

/**
 * Credits spent and held: `reserve()` with its holds' commit and release, and `consume()` of a costed feature on a
 * fleet store. In one process the holds live in the credit book; with a fleet store (`spendCredits`), in the
 * store, where every instance's checks see them, and each step is one atomic call.
 */
export function createCreditSpending(parts: SpendingParts) {
  const { config, answerer, stats, book } = parts
  const { platform } = config
  const spend: Spend | undefined = config.fleet?.store.spendCredits?.bind(config.fleet.store)
  /** A fleet store without `spendCredits` cannot hold a balance across instances: said when credits are first used. */
  const fleetWithoutCredits = (): void => {
    if (config.fleet !== undefined && spend === undefined)
      throw new TypeError('credits on a fleet need a store with spendCredits (entitle/redis has it)')
  }

  function holdOf(
    entry: Entry,
    key: string,
    feature: string,
    units: number,
    price: number,
    id: string,
    expiresAt: number,
  ): CreditHold {
    const { entitlements } = entry
    const type = entitlements.costs.get(feature)!.type
    const settle = (used: number): Promise<void> => {
      const cost = creditCost(entitlements.costs.get(feature)!, used)
      book.end(key, type, id, platform.now())
      const pay = () => (used > 0 ? paid(parts, entry, key, feature, used, cost, type) : Promise.resolve())
      if (spend === undefined) return pay()
      // The balance as the newest token has it: the hold's end and the spend in one step, forced (work was done).
      const balance = entry.entitlements.credits.get(type) ?? entitlements.credits.get(type)!
      const request = fleetRequest(entry.entitlements, balance, platform.now())
      return spend({ ...request, amount: cost, settle: id, force: true }).then(pay)
    }
    return createHold({ id, feature, units, price, expiresAt, settle })
  }

  return {
    /** `client.reserve()` once the customer's entry is loaded (or known missing). */
    async reserve(
      entry: Entry | undefined,
      key: string,
      feature: string,
      options: ReserveOptions,
    ): Promise<ReserveResult> {
      fleetWithoutCredits()
      const { ttlMs, id } = checkOptions(options)
      const checked = answerer.answer(entry, key, feature, options, true)
      if (!checked.allowed || entry === undefined)
        return { reserved: false, decision: checked, hold: undefined }
      const { entitlements } = entry
      const cost = entitlements.costs.get(feature)
      if (cost === undefined || checked.credits === undefined)
        throw new TypeError(`reserve() holds credits: ${feature} costs none in this customer's plan`)
      const units = options.amount ?? 1
      const price = checked.credits.cost
      const balance = entitlements.credits.get(cost.type)!
      const now = platform.now()
      if (spend === undefined) {
        if (book.count(key, cost.type, now) >= MAX_HOLDS)
          throw new TypeError(`at most ${MAX_HOLDS} live holds a customer and credit type`)
        book.hold(key, cost.type, id, price, now + ttlMs)
        return {
          reserved: true,
          decision: checked,
          hold: holdOf(entry, key, feature, units, price, id, now + ttlMs),
        }
      }
      let result: { allowed: boolean; spent: number; held: number }
      try {
        result = await spend({
          ...fleetRequest(entitlements, balance, now),
          amount: price,
          hold: { id, ttlMs },
        })
      } catch (error) {
        const answer = storeFailed(parts, entitlements, checked, options.subject, error)
        if (!answer.allowed) return { reserved: false, decision: answer, hold: undefined }
        book.hold(key, cost.type, id, price, now + ttlMs)
        return {
          reserved: true,
          decision: answer,
          hold: holdOf(entry, key, feature, units, price, id, now + ttlMs),
        }
      }
      const decision = fromStore(parts, entry, key, feature, options, checked, result, balance, price)
      if (!result.allowed) return { reserved: false, decision, hold: undefined }
      return {
        reserved: true,
        decision,
        hold: holdOf(entry, key, feature, units, price, id, now + ttlMs),
      }
    },

    /**
     * `consume()` of a costed feature on a fleet store: the credits are spent in the store first, atomically; then
     * `rest` does what any other consume does (a cap counted in the store). If that denies, the credits go back.
     */
    async consumeInFleet(
      entry: Entry,
      key: string,
      feature: string,
      context: CheckContext,
      rest: () => Promise<Decision>,
    ): Promise<Decision> {
      fleetWithoutCredits()
      const checked = answerer.answer(entry, key, feature, context, true)
      if (!checked.allowed || checked.credits === undefined) return checked
      const { entitlements } = entry
      const balance = entitlements.credits.get(checked.credits.type)!
      const price = checked.credits.cost
      const request = fleetRequest(entitlements, balance, platform.now())
      let result: { allowed: boolean; spent: number; held: number }
      try {
        result = await spend!({ ...request, amount: price })
      } catch (error) {
        const answer = storeFailed(parts, entitlements, checked, context.subject, error)
        return answer.allowed ? rest() : answer
      }
      if (!result.allowed)
        return fromStore(parts, entry, key, feature, context, checked, result, balance, price)
      stats.uncount(checked)
      const decision = await rest()
      // Denied by something else the store counts (a cap): the credits were not used.
      if (!decision.allowed) await spend!({ ...request, amount: -price, force: true }).catch(() => undefined)
      return decision
    },
  }
}

export type CreditSpending = ReturnType<typeof createCreditSpending>
