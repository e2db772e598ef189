import { type Db, prepare } from './db.js'

export type CreditCategory = 'promotional' | 'allowance' | 'paid'

export interface CreditGrantRow {
  id: string
  customer_id: string
  type: string
  amount: number
  priority: number
  category: CreditCategory
  starts_at: number | null
  expires_at: number | null
  /** `allowance`, `rollover`, `order:<id>` (a pack), `admin`. */
  source: string
  created_at: number
  voided_at: number | null
  /** 1 once the expiry (with credits left) was pushed to the customer's event stream. */
  expiry_announced: number
}

export interface CreditBurnRow {
  seq: number
  customer_id: string
  type: string
  /** `null`: an overdraft (no grant covered it). */
  grant_id: string | null
  amount: number
  line_id: string
  at: number
}

/** The credit ledger's statements: grants and burns, read as of a moment. */
export function creditLedger(db: Db) {
  const q = {
    insertGrant: prepare(
      db,
      `INSERT OR IGNORE INTO credit_grants
       (id, customer_id, type, amount, priority, category, starts_at, expires_at, source, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    grant: prepare<CreditGrantRow>(db, 'SELECT * FROM credit_grants WHERE id = ?'),
    grants: prepare<CreditGrantRow>(
      db,
      'SELECT * FROM credit_grants WHERE customer_id = ? AND (? IS NULL OR type = ?) ORDER BY created_at, id',
    ),
    types: prepare<{ type: string }>(db, 'SELECT DISTINCT type FROM credit_grants WHERE customer_id = ?'),
    voidGrant: prepare(db, 'UPDATE credit_grants SET voided_at = ? WHERE id = ? AND voided_at IS NULL'),
    burnedOf: prepare<{ burned: number | null }>(
      db,
      'SELECT SUM(amount) AS burned FROM credit_burns WHERE grant_id = ? AND at <= ?',
    ),
    spent: prepare<{ spent: number | null }>(
      db,
      'SELECT SUM(amount) AS spent FROM credit_burns WHERE customer_id = ? AND type = ? AND at <= ?',
    ),
    debt: prepare<{ debt: number | null }>(
      db,
      'SELECT SUM(amount) AS debt FROM credit_burns WHERE customer_id = ? AND type = ? AND grant_id IS NULL AND at <= ?',
    ),
    insertBurn: prepare(
      db,
      'INSERT INTO credit_burns (customer_id, type, grant_id, amount, line_id, at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    burns: prepare<CreditBurnRow>(
      db,
      'SELECT * FROM credit_burns WHERE customer_id = ? AND (? IS NULL OR type = ?) AND at <= ? ORDER BY seq',
    ),
    unannounced: prepare<CreditGrantRow>(
      db,
      `SELECT * FROM credit_grants WHERE expiry_announced = 0 AND voided_at IS NULL AND expires_at IS NOT NULL
       AND expires_at <= ?`,
    ),
    announced: prepare(db, 'UPDATE credit_grants SET expiry_announced = 1 WHERE id = ?'),
  }
  return {
    /** Adds a grant; `false` when one with this id exists (an allowance already granted, an order replayed). */
    insertCreditGrant(grant: Omit<CreditGrantRow, 'voided_at' | 'expiry_announced'>): boolean {
      const g = grant
      return (
        q.insertGrant.run(
          g.id,
          g.customer_id,
          g.type,
          g.amount,
          g.priority,
          g.category,
          g.starts_at,
          g.expires_at,
          g.source,
          g.created_at,
        ).changes === 1
      )
    },
    creditGrant: (id: string) => q.grant.get(id),
    creditGrants: (customerId: string, type?: string) => q.grants.all(customerId, type ?? null, type ?? null),
    creditTypes: (customerId: string) => q.types.all(customerId).map((row) => row.type),
    voidCreditGrant: (id: string, at: number) => q.voidGrant.run(at, id).changes === 1,
    /** What was burned from a grant up to `at` (inclusive). */
    burnedFrom: (grantId: string, at: number) => q.burnedOf.get(grantId, at)?.burned ?? 0,
    /** What was burned of a credit type in all, overdrafts included, up to `at`. */
    creditsSpent: (customerId: string, type: string, at: number) =>
      q.spent.get(customerId, type, at)?.spent ?? 0,
    /** Overdraft not yet paid back by a later grant, as of `at`. */
    creditDebt: (customerId: string, type: string, at: number) => q.debt.get(customerId, type, at)?.debt ?? 0,
    insertCreditBurn(
      customerId: string,
      type: string,
      grantId: string | null,
      amount: number,
      lineId: string,
      at: number,
    ) {
      q.insertBurn.run(customerId, type, grantId, amount, lineId, at)
    },
    creditBurns: (customerId: string, type: string | undefined, at: number) =>
      q.burns.all(customerId, type ?? null, type ?? null, at),
    /** Grants whose end passed and that no event has told of yet. */
    unannouncedExpiries: (at: number) => q.unannounced.all(at),
    announceExpiry: (id: string) => void q.announced.run(id),
  }
}
