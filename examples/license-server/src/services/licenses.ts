import type { UsagePeriod } from 'entitle'
import { currentWindowEnd, NEVER, type UsageRefusalCode } from 'entitle/protocol'
import {
  type Catalog,
  type CatalogCap,
  entitlementFor,
  type LicenseTerms,
  UnknownPlanError,
} from '../catalog.js'
import { DomainError } from '../errors.js'
import type { LicenseRow, Repository } from '../repository.js'

/** A license as the API shows it. */
export function licenseView(row: LicenseRow) {
  return {
    customerId: row.customer_id,
    sku: row.sku,
    seats: row.seats,
    addons: JSON.parse(row.addons) as string[],
    termStart: new Date(row.term_start).toISOString(),
    termEnd: new Date(row.term_end).toISOString(),
    ...(row.trial_end === null ? {} : { trialEnd: new Date(row.trial_end).toISOString() }),
    status: row.status,
    version: row.version,
  }
}

/** What the license holds as far as the catalog is concerned: plan, seats, add-ons, approved grants. */
export function termsOf(repo: Repository, license: LicenseRow): LicenseTerms {
  return {
    sku: license.sku,
    seats: license.seats,
    addons: JSON.parse(license.addons) as string[],
    grants: repo.grants(license.customer_id),
  }
}

/** The customer's license while it is active: `not_found` without one, `gone` once it ended. */
export function activeLicense(repo: Repository, customerId: string): LicenseRow {
  const license = repo.license(customerId)
  if (license === undefined)
    throw new DomainError('not_found', 'No license', `no license for customer ${customerId}`)
  if (license.status !== 'active')
    throw new DomainError('gone', 'License ended', `the license of ${customerId} is ${license.status}`)
  return license
}

/** The license's entitlement as the catalog sells it, or the error saying its plan left the catalog. */
function priceOf(catalog: Catalog, repo: Repository, license: LicenseRow) {
  try {
    return entitlementFor(catalog, termsOf(repo, license))
  } catch (error) {
    if (error instanceof UnknownPlanError) return error
    throw error
  }
}

/**
 * The features the catalog sells this license. A plan that left the catalog is the operator's to fix (put it
 * back, or move the customer); meanwhile the customer's client keeps the token it has, so this is a 503.
 */
export function pricedEntitlement(catalog: Catalog, repo: Repository, license: LicenseRow) {
  const priced = priceOf(catalog, repo, license)
  if (!(priced instanceof UnknownPlanError)) return priced
  throw new DomainError(
    'unavailable',
    'Plan unavailable',
    `${priced.message}: no token can be issued for ${license.customer_id}`,
    {},
    300,
  )
}

/** A license's metered caps by metric, for placing its usage in windows; or why it cannot be priced. */
export function usageCaps(
  catalog: Catalog,
  repo: Repository,
  license: LicenseRow,
): ReadonlyMap<string, CatalogCap> | { code: UsageRefusalCode; reason: string } {
  const priced = priceOf(catalog, repo, license)
  return priced instanceof UnknownPlanError
    ? { code: 'not_priced', reason: `not priced: ${priced.message}` }
    : priced.caps
}

/**
 * The end of the usage window of `metric` that contains `at`, anchored at the license term's start (metrics
 * without a cap count by month), or why no window can be computed for `at`.
 */
export function usageWindowEnd(
  caps: ReadonlyMap<string, { period: UsagePeriod }>,
  license: LicenseRow,
  metric: string,
  at: number,
): number | { code: UsageRefusalCode; reason: string } {
  const end = currentWindowEnd(caps.get(metric)?.period ?? 'month', license.term_start, at) ?? NEVER
  if (!Number.isSafeInteger(end)) return { code: 'invalid', reason: 'start: no usage window contains it' }
  return end
}
