import type { CreditCategory } from '../../core/credits.js'
import type { Decision } from '../../core/decision.js'
import type { CheckContext } from '../options.js'

/** What `client.reserve()` is asked for: a check's context (the customer, the units to hold) and the hold's life. */
export interface ReserveOptions extends CheckContext {
  /**
   * How long the hold lasts if it is neither committed nor released: then it returns by itself (the work crashed).
   * Milliseconds, from 1 000 to 86 400 000. Default 60 000.
   */
  ttlMs?: number
  /** The hold's id (an idempotency key of the app's). Default: a random one. */
  id?: string
}

/** Credits set aside by `client.reserve()` for work whose cost is known only once it is done. */
export interface CreditHold {
  readonly id: string
  /** The costed feature or metric it was reserved for. */
  readonly feature: string
  /** Units held (`amount` of the reserve). */
  readonly amount: number
  /** Credits held: the units priced. */
  readonly credits: number
  /** When it returns by itself, by this client's clock (a fleet store times it by its own). */
  readonly expiresAt: number
  /**
   * The work is done and used `units` (default: all that was held; at most that): they are recorded as usage like
   * any other (exactly once, journaled) and paid from the balance, and what was held beyond them returns. After the
   * hold's time is up the units are still recorded and paid (the work was done), as an overdraft if need be.
   */
  commit(units?: number): Promise<void>
  /** The work did not happen: the held credits return. */
  release(): Promise<void>
}

/** What `client.reserve()` resolves to. */
export type ReserveResult =
  | { readonly reserved: true; readonly decision: Decision; readonly hold: CreditHold }
  | { readonly reserved: false; readonly decision: Decision; readonly hold: undefined }

/** One grant of a balance as the client sees it now. Times are epoch milliseconds. */
export interface GrantView {
  readonly id: string
  readonly category: CreditCategory
  readonly priority: number
  readonly startsAt: number | undefined
  readonly expiresAt: number | undefined
  /** Credits left in it at the snapshot. */
  readonly atSnapshot: number
  /**
   * Credits left in it now: the snapshot less what this client spent and holds since, taken in the burn order;
   * 0 once it expired.
   */
  readonly remaining: number
}

/** A customer's balance of one credit type, as `client.balance()` answers it from memory. Times are epoch ms. */
export interface CreditBalanceView {
  readonly type: string
  /** Spendable now: the snapshot's live grants less what this client spent and holds since. Below zero in overdraft. */
  readonly available: number
  /** Held by this client's live holds (`reserve()`). */
  readonly held: number
  /** Spent by this client since the snapshot (not yet in one). */
  readonly spentSinceSnapshot: number
  /** How far below zero spending may go. */
  readonly overdraft: number
  readonly grants: readonly GrantView[]
  /** When the next live grant with credits left expires, if any does. */
  readonly nextExpiry: number | undefined
  /** When the license server read its ledger for the snapshot, and how long ago that is. */
  readonly asOf: number
  readonly age: number
  /**
   * The plan's offline bound, if any: once the snapshot is older than `afterMs`, at most `spend` credits may be spent
   * since it; `offline` says whether it applies now.
   */
  readonly offlineBound:
    | { readonly afterMs: number; readonly spend: number; readonly offline: boolean }
    | undefined
}
