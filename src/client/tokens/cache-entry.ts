import type { JWK } from 'jose'
import type { DecisionReason } from '../../core/decision.js'
import type { Entitlements } from '../../core/entitlements.js'
import type { EntitlementErrorCode } from '../../core/errors.js'
import { FrozenMap, type KeyLayout } from '../../core/frozen-map.js'
import type { Scheduled } from '../../platform/due-queue.js'
import type { RetryState } from '../../transport/retry.js'
import type { Slot } from '../answers/memo-table.js'
import type { Verified } from './token-verifier.js'

/**
 * The cache key of a single-tenant client's one token. A multi-tenant client keys by customer id, which is never
 * empty, so the two cannot meet.
 */
export const SINGLE_TENANT_KEY = ''

/** Where an entry's next answer says it came from. */
export type Origin = 'fresh' | 'stored' | 'cache'

/**
 * A customer's verified token in memory: the read model and what renewing it needs, not the token itself (a
 * multi-tenant service holding a million customers would keep a million copies of 1–2 KB it never reads again).
 */
export interface Entry extends Scheduled {
  /** Unique in this client: names the entry in the memo table. */
  readonly id: number
  /** Where the entry's block of memo slots starts (see the memo table's `allocate`). */
  readonly memoBase: number
  /** Whether an answer of this entry was ever memoized: if not, a record() has nothing to forget. */
  memoized: boolean
  /**
   * The feature of the memo slot this entry's answers last came from or went to, and that slot (the memo table's;
   * checked there like any other before it is used). A service that checks each customer for one feature reaches
   * the answer from the entry, where the table costs a lookup of the feature in the layout and two reads from
   * arrays that hold every customer's slots: at 100 000 customers, each likely a CPU cache miss. The feature is
   * kept here as well as in the slot so that a check of another feature does not read the slot at all.
   */
  recentFeature: string | undefined
  recentSlot: Slot | undefined
  readonly subject: string
  /** The app's own token (single-tenant), kept to notice when its source hands back a new one. */
  readonly token: string | undefined
  readonly entitlements: Entitlements
  /** `entitlements.expiresAt`, kept here so a memoized answer touches one object less. */
  readonly expiresAt: number
  readonly etag: string | undefined
  /** The remote key that verified it, stored with it so a restart can verify it while the key set is away. */
  readonly key: JWK | undefined
  /** When the source last vouched for this token (a fetch or a 304). */
  confirmedAt: number
  /**
   * `fresh`: loaded by the check that is waiting for it (said once); `stored`: read from storage and not yet
   * vouched for by the source (said until it is); `cache`: vouched for and in memory.
   */
  origin: Origin
  /** Made at the first failed refresh: most entries never need one. */
  retry: RetryState | undefined
  /** Changes when the entry's answers must be worked out again (its origin changed): memoized ones are void. */
  generation: number
  /** The feature layout of the token, shared by everyone on its plan: memoized answers are placed by it. */
  readonly layout: KeyLayout | undefined
  /**
   * Whether a cap of the token has usage alerts (thresholds): record() looks the cap up only then. Read from the
   * entry, which record() holds already, it spares every other record() a lookup of the feature in the token.
   */
  readonly alerts: boolean
  /** When a lookup last moved the entry up the LRU order, in lookups (see the subject index). */
  touched: number
}

/**
 * What is known of a customer with no usable token, remembered for a minute: the server said there is no license
 * (`not_in_plan`) or it ended (`revoked`), or the token it handed out was proven bad (its error code).
 */
export type Verdict = (
  | { readonly reason: Extract<DecisionReason, 'not_in_plan' | 'revoked'>; readonly error?: undefined }
  | { readonly reason?: undefined; readonly error: EntitlementErrorCode }
) & {
  /** Until the first answer from it: reached by the check that is waiting for it, which answers `fresh`. */
  fresh?: boolean
}

/** What an entry is made of, beside what the cache decides (its id and its place in the memo table). */
export interface EntryInput {
  readonly key: string
  readonly verified: Verified
  readonly etag: string | undefined
  readonly confirmedAt: number
  readonly origin: Origin
  readonly token: string
}

/** Whether a cap of the token has usage alerts (see `Entry.alerts`). */
function hasAlerts(entitlements: Entitlements): boolean {
  for (const feature of entitlements.features.values()) if (feature.cap?.thresholds !== undefined) return true
  return false
}

/** A new entry, not yet indexed, scheduled or memoized. */
export function createEntry(input: EntryInput, id: number, memoBase: number): Entry {
  const { entitlements } = input.verified
  return {
    id,
    memoBase,
    memoized: false,
    recentFeature: undefined,
    recentSlot: undefined,
    subject: input.key,
    token: input.key === SINGLE_TENANT_KEY ? input.token : undefined,
    entitlements,
    expiresAt: entitlements.expiresAt,
    etag: input.etag,
    key: input.verified.key,
    confirmedAt: input.confirmedAt,
    origin: input.origin,
    retry: undefined,
    generation: 0,
    layout: entitlements.features instanceof FrozenMap ? entitlements.features.layout : undefined,
    alerts: hasAlerts(entitlements),
    touched: 0,
    due: 0,
    slot: -1,
  }
}
