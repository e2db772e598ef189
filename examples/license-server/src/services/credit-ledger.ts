import type { CreditBalance } from 'entitle'
import { addMonths, compareBurnOrder, roundCredits } from 'entitle/protocol'
import type { Catalog, CatalogAllowance } from '../catalog.js'
import { DomainError } from '../errors.js'
import type { LicenseRow, Repository } from '../repository.js'
import type { CreditGrantRow } from '../repository-credits.js'

/*
 * The credit ledger read: what is left of a grant at a moment, the month's allowances (made once, with rollover),
 * the snapshot a token carries, the ledger an admin reads. Writes that follow from reading (an allowance made, a
 * debt paid back by a new grant) are here too; the service (`credits.ts`) holds the writes an order or admin asks.
 */

/** What the reads need. */
export interface Ledger {
  readonly repo: Repository
  readonly catalog: Catalog
}

/** At most this many grants of one type in a token's snapshot: the ones that burn first. */
const MAX_SNAPSHOT_GRANTS = 256

/** A grant as the burn order reads it, with what is left of it at a moment. */
export function burnable(row: CreditGrantRow, remaining: number) {
  return {
    id: row.id,
    remaining,
    priority: row.priority,
    category: row.category,
    startsAt: row.starts_at ?? undefined,
    // A voided grant ends at its voiding, as an expired one at its expiry.
    expiresAt: row.voided_at ?? row.expires_at ?? undefined,
  }
}

/** The license's allowances by credit type: its plan's and its account add-ons', summed. */
export function allowancesOf({ catalog }: Ledger, license: LicenseRow): Map<string, CatalogAllowance> {
  const out = new Map<string, CatalogAllowance>()
  const groups = [
    catalog.plans.get(license.sku),
    ...(JSON.parse(license.addons) as string[]).map((addon) => catalog.addons.get(addon)),
  ]
  for (const group of groups)
    for (const [type, allowance] of group?.credits ?? []) {
      const had = out.get(type)
      out.set(type, {
        monthly: (had?.monthly ?? 0) + allowance.monthly,
        rollover: (had?.rollover ?? 0) + allowance.rollover,
      })
    }
  return out
}

/** What is left of a grant at `at`: its amount less its burns up to then; 0 when it is not spendable then. */
export function remainingAt({ repo }: Ledger, row: CreditGrantRow, at: number): number {
  return roundCredits(row.amount - repo.burnedFrom(row.id, at))
}

/**
 * Grants the month's allowance of each credit type, once (its id is the month), from the month's start to its
 * end, with what the previous month left (up to the rollover) carried as a grant of its own. Months are counted
 * from the term's start, as caps are.
 */
export function ensureAllowances(ledger: Ledger, license: LicenseRow, at: number): void {
  const { repo } = ledger
  if (license.status !== 'active' || at >= license.term_end) return
  for (const [type, allowance] of allowancesOf(ledger, license)) {
    let start = license.term_start
    let months = 0
    while (addMonths(license.term_start, months + 1) <= at) months++
    start = addMonths(license.term_start, months)
    const end = addMonths(license.term_start, months + 1)
    const id = `allowance:${license.customer_id}:${type}:${start}`
    const grant = (gid: string, amount: number, source: string) =>
      repo.insertCreditGrant({
        id: gid,
        customer_id: license.customer_id,
        type,
        amount,
        priority: 0,
        category: 'allowance',
        starts_at: start,
        expires_at: end,
        source,
        created_at: at,
      })
    if (repo.creditGrant(id) !== undefined) continue
    grant(id, allowance.monthly, 'allowance')
    settleDebt(ledger, license.customer_id, type, id, Math.max(at, start))
    if (months === 0 || allowance.rollover <= 0) continue
    const previous = addMonths(license.term_start, months - 1)
    let left = 0
    for (const before of [
      `allowance:${license.customer_id}:${type}:${previous}`,
      `rollover:${license.customer_id}:${type}:${previous}`,
    ]) {
      const row = repo.creditGrant(before)
      if (row !== undefined && row.voided_at === null) left += remainingAt(ledger, row, start - 1)
    }
    const carried = Math.min(allowance.rollover, Math.max(0, left))
    if (carried > 0) {
      grant(`rollover:${license.customer_id}:${type}:${start}`, carried, 'rollover')
      settleDebt(
        ledger,
        license.customer_id,
        type,
        `rollover:${license.customer_id}:${type}:${start}`,
        Math.max(at, start),
      )
    }
  }
}

/** The credit types a customer has: their allowances' and any they hold a grant of. */
export function typesOf(ledger: Ledger, license: LicenseRow): string[] {
  const { repo, catalog } = ledger
  return [
    ...new Set([...allowancesOf(ledger, license).keys(), ...repo.creditTypes(license.customer_id)]),
  ].filter((type) => catalog.credits.has(type))
}

/** Grants of a type spendable at `at` or later, with what is left of each at `at`, in the burn order. */
function liveGrants(ledger: Ledger, customerId: string, type: string, at: number) {
  const { repo } = ledger
  return repo
    .creditGrants(customerId, type)
    .map((row) => burnable(row, remainingAt(ledger, row, at)))
    .filter((grant) => grant.remaining > 0 && (grant.expiresAt === undefined || grant.expiresAt > at))
    .sort(compareBurnOrder)
}

/**
 * A new grant first pays back any overdraft: the debt is burned from it (and the overdraft's own entry reduced by
 * as much), so spending in all is unchanged and the customer's room to overdraw is whole again.
 */
export function settleDebt(
  ledger: Ledger,
  customerId: string,
  type: string,
  grantId: string,
  at: number,
): void {
  const { repo } = ledger
  const debt = roundCredits(repo.creditDebt(customerId, type, at))
  const row = repo.creditGrant(grantId)
  if (!(debt > 0) || row === undefined) return
  const take = Math.min(debt, remainingAt(ledger, row, at))
  if (!(take > 0)) return
  repo.insertCreditBurn(customerId, type, grantId, take, `debt:${grantId}`, at)
  repo.insertCreditBurn(customerId, type, null, -take, `debt:${grantId}`, at)
}

/**
 * Whether the customer's credits changed by time alone between `since` and `at`: a grant started or ended, or a
 * month of allowance began. A token signed before that carries an old snapshot and is not reused.
 */
export function movedBetween(ledger: Ledger, license: LicenseRow, since: number, at: number): boolean {
  const { repo } = ledger
  const within = (moment: number | null) => moment !== null && moment > since && moment <= at
  if (allowancesOf(ledger, license).size > 0) {
    let months = 0
    while (addMonths(license.term_start, months) <= since) months++
    if (addMonths(license.term_start, months) <= at) return true
  }
  return repo.creditGrants(license.customer_id).some((row) => within(row.starts_at) || within(row.expires_at))
}

/**
 * The `ent.credits` claim for a license at `at`: each type's grants with what is left (the first 256 in burn
 * order), what was spent in all, when it was read. `undefined` for a customer with no credits (a v1 token).
 */
export function snapshotOf(
  ledger: Ledger,
  license: LicenseRow,
  at: number,
): Record<string, CreditBalance> | undefined {
  const { repo, catalog } = ledger
  ensureAllowances(ledger, license, at)
  const types = typesOf(ledger, license)
  if (types.length === 0) return undefined
  const out: Record<string, CreditBalance> = {}
  for (const type of types) {
    const sold = catalog.credits.get(type)!
    const costs = Object.fromEntries(
      [...catalog.costs]
        .filter(([, cost]) => cost.type === type)
        .map(([name, cost]) => [name, { amount: cost.amount, ...(cost.per === 1 ? {} : { per: cost.per }) }]),
    )
    out[type] = {
      grants: liveGrants(ledger, license.customer_id, type, at)
        .slice(0, MAX_SNAPSHOT_GRANTS)
        .map((grant) => ({
          id: grant.id,
          remaining: grant.remaining,
          ...(grant.priority ? { priority: grant.priority } : {}),
          category: grant.category,
          ...(grant.startsAt !== undefined && grant.startsAt > at
            ? { startsAt: Math.ceil(grant.startsAt / 1000) }
            : {}),
          ...(grant.expiresAt !== undefined ? { expiresAt: Math.floor(grant.expiresAt / 1000) } : {}),
        })),
      asOf: at / 1000,
      spent: roundCredits(repo.creditsSpent(license.customer_id, type, at)),
      // The room left to overdraw: what the catalog allows less what is owed (a later grant pays it back).
      ...(sold.overdraft > 0
        ? {
            overdraft: Math.max(
              0,
              roundCredits(sold.overdraft - repo.creditDebt(license.customer_id, type, at)),
            ),
          }
        : {}),
      ...(sold.offline ? { offline: sold.offline } : {}),
      costs,
    }
  }
  return out
}

/** Each credit type's balance at `at` (default now), grant by grant, and the ledger's entries up to then. */
export function ledgerAt(ledger: Ledger, customerId: string, at: number) {
  const { repo } = ledger
  const license = repo.license(customerId)
  if (license === undefined)
    throw new DomainError('not_found', 'No license', `no license for customer ${customerId}`)
  ensureAllowances(ledger, license, at)
  const balances: Record<string, unknown> = {}
  for (const type of typesOf(ledger, license)) {
    const grants = repo.creditGrants(customerId, type).filter((row) => row.created_at <= at)
    const views = grants.map((row) => {
      const end = row.voided_at !== null && row.voided_at <= at ? row.voided_at : row.expires_at
      const state =
        row.voided_at !== null && row.voided_at <= at
          ? 'voided'
          : row.expires_at !== null && row.expires_at <= at
            ? 'expired'
            : row.starts_at !== null && row.starts_at > at
              ? 'scheduled'
              : 'live'
      const burned = repo.burnedFrom(row.id, at)
      return {
        id: row.id,
        category: row.category,
        priority: row.priority,
        amount: row.amount,
        burned: roundCredits(burned),
        remaining: state === 'live' ? roundCredits(row.amount - burned) : 0,
        state,
        source: row.source,
        startsAt: row.starts_at === null ? null : new Date(row.starts_at).toISOString(),
        endsAt: end === null ? null : new Date(end).toISOString(),
      }
    })
    const overdraft = repo.creditDebt(customerId, type, at)
    const live = views.reduce((sum, grant) => sum + grant.remaining, 0)
    balances[type] = {
      available: roundCredits(live - overdraft),
      overdraft: roundCredits(overdraft),
      spent: roundCredits(repo.creditsSpent(customerId, type, at)),
      grants: views,
    }
  }
  const entries = repo.creditBurns(customerId, undefined, at).map((burn) => ({
    at: new Date(burn.at).toISOString(),
    type: burn.type,
    grant: burn.grant_id,
    burned: burn.amount,
    line: burn.line_id,
  }))
  return { customerId, at: new Date(at).toISOString(), balances, burns: entries }
}
