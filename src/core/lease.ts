/**
 * A verified lease: one seat of a floating-license pool, held by `holder` for the customer `subject`. Only the
 * verifier makes these (`verifier.verifyLease()`, and the client when the license server hands one out): an object
 * of the same shape made by hand is not a lease, and a check given one denies. Times are epoch milliseconds.
 */
export interface Lease {
  /** The lease's id: the same across its renewals, so the server and the app can follow one holder. */
  readonly id: string
  readonly pool: string
  /** The customer (`sub`). */
  readonly subject: string
  /** Who holds the seat: a machine's fingerprint, a process id, a user id, as the pool counts holders. */
  readonly holder: string
  /** When the license server signed this lease (`iat`), by its clock. */
  readonly issuedAt: number
  /** When the lease ends (`exp`), by the license server's clock. */
  readonly expiresAt: number
  /**
   * When the lease ends by this machine's clock. For a lease just received from the license server, its signed
   * length counted from its arrival, so a clock that is off here neither cuts it short nor stretches it; else
   * `expiresAt`.
   */
  readonly validUntil: number
  /** A borrowed lease: taken for days, to work offline; it is never renewed. */
  readonly borrowed: boolean
  /** The signed lease token itself. */
  readonly token: string
}

/** The `lease` claim of a lease token. */
export interface LeaseClaim {
  readonly id: string
  readonly pool: string
  readonly holder: string
  readonly borrowed?: true | undefined
}

const verified = new WeakSet<object>()

const MAX_NAME = 128
const isName = (value: unknown, max = MAX_NAME): value is string =>
  typeof value === 'string' && value.length > 0 && value.length <= max

/** The `lease` claim, if the payload has a well-formed one. */
export function readLeaseClaim(payload: Record<string, unknown>): LeaseClaim | undefined {
  const claim = payload.lease as Record<string, unknown> | undefined
  if (typeof claim !== 'object' || claim === null) return undefined
  const { id, pool, holder, borrowed } = claim
  if (!isName(id) || !isName(pool) || !isName(holder, 256)) return undefined
  if (borrowed !== undefined && borrowed !== true) return undefined
  return borrowed ? { id, pool, holder, borrowed } : { id, pool, holder }
}

/** Makes a lease from a verified token's claims; only the verifier calls this. */
export function verifiedLease(fields: Omit<Lease, never>): Lease {
  const lease = Object.freeze({ ...fields })
  verified.add(lease)
  return lease
}

/** Whether `value` is a lease the verifier made (not an object shaped like one). */
export function isVerifiedLease(value: unknown): value is Lease {
  return typeof value === 'object' && value !== null && verified.has(value)
}
