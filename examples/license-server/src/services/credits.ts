import { randomUUID } from 'node:crypto'
import { creditCost, planBurn, roundCredits } from 'entitle/protocol'
import type { Catalog } from '../catalog.js'
import { DomainError } from '../errors.js'
import type { LicenseRow, Repository } from '../repository.js'
import type { CreditCategory } from '../repository-credits.js'
import {
  burnable,
  ensureAllowances,
  type Ledger,
  ledgerAt,
  movedBetween,
  remainingAt,
  settleDebt,
  snapshotOf,
} from './credit-ledger.js'
import type { EventBus } from './events.js'

const DAY_MS = 86_400_000
/** What an admin grants: promotional credits by default, with an expiry if given. */
export interface GrantInput {
  type: string
  amount: number
  category?: CreditCategory | undefined
  priority?: number | undefined
  startsAt?: string | undefined
  expiresAt?: string | undefined
}

/**
 * The credit ledger: monthly allowances (with rollover), packs bought by top-up orders, grants from admins and
 * their voiding; usage burns in the burn order of `entitle/protocol` (the SDK's own), once per usage line, inside
 * the line's transaction. A grant's balance is read at a moment: past its expiry it is worth nothing then, with no
 * sweep to wait for (the sweep only tells the customer's apps).
 */
export function createCreditService(options: {
  repo: Repository
  catalog: Catalog
  events: EventBus
  now: () => number
}) {
  const { repo, catalog, events, now } = options
  const ledger: Ledger = { repo, catalog }

  function changed(customerId: string, at: number, data: Record<string, unknown>): void {
    // A new license version: the next token request gets a new snapshot, not the held one.
    repo.bumpVersion(customerId, at)
    events.record('entitlements', customerId, data)
  }

  return {
    ensureAllowances: (license: LicenseRow, at: number) => ensureAllowances(ledger, license, at),
    movedBetween: (license: LicenseRow, since: number, at: number) =>
      movedBetween(ledger, license, since, at),
    snapshot: (license: LicenseRow, at: number) => snapshotOf(ledger, license, at),
    ledger: (customerId: string, at = now()) => ledgerAt(ledger, customerId, at),

    /**
     * Burns what a usage line of a costed feature or metric costs, in the burn order among the grants spendable
     * when the usage began (`usedAt`); what none covers is an overdraft. Called inside the line's transaction, once
     * per stored line. Returns the credits burned.
     */
    burnLine(
      license: LicenseRow,
      metric: string,
      amount: number,
      usedAt: number,
      lineId: string,
      at: number,
    ): number {
      const cost = catalog.costs.get(metric)
      if (cost === undefined) return 0
      ensureAllowances(ledger, license, usedAt)
      const price = creditCost(cost, amount)
      const grants = repo
        .creditGrants(license.customer_id, cost.type)
        .map((row) => burnable(row, remainingAt(ledger, row, at)))
      const { takes, short } = planBurn(grants, price, usedAt)
      for (const take of takes)
        repo.insertCreditBurn(license.customer_id, cost.type, take.id, take.amount, lineId, at)
      if (short > 0)
        repo.insertCreditBurn(license.customer_id, cost.type, null, roundCredits(short), lineId, at)
      return price
    },

    /** A top-up order: `quantity` packs, one paid grant, lasting the pack's days if it says. Idempotent by order. */
    topUp(customerId: string, sku: string, quantity: number, orderId: string, at: number) {
      const pack = catalog.packs.get(sku)
      if (pack === undefined)
        throw new DomainError('invalid', 'Unknown pack', `the catalog sells no credit pack ${sku}`)
      const id = `order:${orderId}`
      repo.insertCreditGrant({
        id,
        customer_id: customerId,
        type: pack.credits,
        amount: pack.amount * quantity,
        priority: 0,
        category: 'paid',
        starts_at: null,
        expires_at: pack.expiresInDays === undefined ? null : at + pack.expiresInDays * DAY_MS,
        source: id,
        created_at: at,
      })
      settleDebt(ledger, customerId, pack.credits, id, at)
      changed(customerId, at, { credits: pack.credits, grant: id, change: 'top-up' })
      return { grant: id, type: pack.credits, amount: pack.amount * quantity }
    },

    /** An admin's grant (promotional unless said). */
    grant(customerId: string, input: GrantInput) {
      if (!catalog.credits.has(input.type))
        throw new DomainError(
          'invalid',
          'Unknown credit type',
          `the catalog has no credit type ${input.type}`,
        )
      const at = now()
      const id = `grant_${randomUUID().replaceAll('-', '').slice(0, 24)}`
      const time = (value: string | undefined) => (value === undefined ? null : Date.parse(value))
      events.transaction(() => {
        repo.insertCreditGrant({
          id,
          customer_id: customerId,
          type: input.type,
          amount: input.amount,
          priority: input.priority ?? 0,
          category: input.category ?? 'promotional',
          starts_at: time(input.startsAt),
          expires_at: time(input.expiresAt),
          source: 'admin',
          created_at: at,
        })
        if (input.startsAt === undefined) settleDebt(ledger, customerId, input.type, id, at)
        changed(customerId, at, { credits: input.type, grant: id, change: 'granted' })
      })
      return repo.creditGrant(id)!
    },

    /** Voids a grant: what is left of it is worth nothing from now on. */
    voidGrant(customerId: string, grantId: string) {
      const row = repo.creditGrant(grantId)
      if (row === undefined || row.customer_id !== customerId)
        throw new DomainError('not_found', 'No such grant', `${customerId} has no credit grant ${grantId}`)
      const at = now()
      events.transaction(() => {
        if (repo.voidCreditGrant(grantId, at))
          changed(customerId, at, { credits: row.type, grant: grantId, change: 'voided' })
      })
      return repo.creditGrant(grantId)!
    },

    /** Tells each customer whose grant expired with credits left (once): their apps' snapshots are behind. */
    sweepExpiries(at = now()): number {
      let told = 0
      events.transaction(() => {
        for (const row of repo.unannouncedExpiries(at)) {
          repo.announceExpiry(row.id)
          if (remainingAt(ledger, row, row.expires_at!) <= 0) continue
          changed(row.customer_id, at, { credits: row.type, grant: row.id, change: 'expired' })
          told++
        }
      })
      return told
    },
  }
}

export type CreditService = ReturnType<typeof createCreditService>
