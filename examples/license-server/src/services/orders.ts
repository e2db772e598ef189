import { createHash } from 'node:crypto'
import { addMonths } from 'entitle/protocol'
import type { Catalog } from '../catalog.js'
import { DomainError } from '../errors.js'
import type { LicenseRow, Repository } from '../repository.js'
import type { Order } from '../schemas.js'
import { hashSecret, newSecret } from './credentials.js'
import type { CreditService } from './credits.js'
import type { EventBus } from './events.js'
import { activeLicense, licenseView } from './licenses.js'

const DAY_MS = 86_400_000

/** The SKUs the catalog sells (a retired plan is kept for those who hold it, and not named). */
const onSale = (catalog: Catalog) =>
  [...catalog.plans].filter(([, plan]) => !plan.retired).map(([sku]) => sku)

/** The plan and add-ons of an order, checked against the catalog: known, on sale (unless already held), of the tier said. */
function checkCatalog(catalog: Catalog, order: Order, existing: LicenseRow | undefined) {
  const plan = order.sku === undefined ? undefined : catalog.plans.get(order.sku)
  if (order.sku !== undefined && plan === undefined)
    throw new DomainError(
      'invalid',
      'Unknown SKU',
      `the catalog has no SKU ${order.sku}; it sells ${onSale(catalog).join(', ')}`,
    )
  // A retired plan is honoured for those who hold it, never sold again (a renewal keeps it).
  if (plan?.retired && order.sku !== existing?.sku)
    throw new DomainError('invalid', 'Plan retired', `SKU ${order.sku} is no longer sold`)
  if (order.tier !== undefined && plan !== undefined && plan.tier !== order.tier)
    throw new DomainError(
      'invalid',
      'Tier mismatch',
      `SKU ${order.sku} is tier ${plan.tier}, not ${order.tier}`,
    )
  const held = JSON.parse(existing?.addons ?? '[]') as string[]
  for (const bought of order.addons ?? []) {
    // `sso`, or `sso@workspace:ws-9` for one resource: the same add-on, sold the same way.
    const addon = bought.split('@')[0]!
    const sold = catalog.addons.get(addon)
    if (sold === undefined)
      throw new DomainError('invalid', 'Unknown add-on', `the catalog has no add-on ${addon}`)
    if (sold.retired && !held.includes(bought))
      throw new DomainError('invalid', 'Add-on retired', `add-on ${addon} is no longer sold`)
  }
  if ((order.pack !== undefined || order.quantity !== undefined) !== (order.type === 'topup'))
    throw new DomainError(
      'invalid',
      'Pack on a top-up only',
      'pack and quantity go with type topup, and it needs them',
    )
  if (order.trialDays !== undefined && order.type !== 'purchase')
    throw new DomainError('invalid', 'Trial on a purchase only', 'trialDays starts a trial with a purchase')
  return plan
}

/**
 * Orders from the CRM, ERP or payment system: purchases (a trial, or a paid term; a purchase during a trial
 * converts it), upgrades, downgrades, renewals and cancellations. Idempotent by order id; a replayed signature is
 * refused before this runs (`middleware/order-signature.ts`).
 */
export function createOrderService(options: {
  repo: Repository
  catalog: Catalog
  events: EventBus
  /** Where a top-up's credits go. */
  credits: CreditService
  now: () => number
}) {
  const { repo, catalog, events, now } = options

  /**
   * Fewer seats than devices: the newest devices beyond the seats lose theirs at once, their tokens revoked (the
   * apps learn it at their next revocation poll or event, and must activate again, which a full license refuses).
   * A device holding an offline license keeps its seat until that license ends: it cannot be called back, so such
   * devices count first, and when they alone fill the seats no online device keeps one.
   */
  function releaseSeatsPast(customerId: string, seats: number, at: number): void {
    const devices = repo.devices(customerId)
    const offline = devices.filter((device) => device.offline_until > at)
    let kept = offline.length
    for (const device of devices) {
      if (device.offline_until > at) continue
      if (kept < seats) {
        kept++
        continue
      }
      repo.deleteDevice(customerId, device.fingerprint)
      repo.revokeLive(customerId, at, device.fingerprint)
      events.record('revocations', customerId)
    }
  }

  /** Starts a trial of a plan: as many as the catalog allows one customer (`trialsPerCustomer`), cancelled ones too. */
  function takeTrial(customerId: string, sku: string, at: number): void {
    const allowed = catalog.plans.get(sku)?.trialsPerCustomer ?? 1
    const taken = repo.trialsTaken(customerId, sku)
    if (taken >= allowed)
      throw new DomainError(
        'conflict',
        'Trial already taken',
        `${customerId} has had ${taken} trial(s) of ${sku}, the most the catalog allows: place a purchase`,
        { taken, allowed },
      )
    repo.recordTrial(customerId, sku, at)
  }

  /** A purchase: a new license (with credentials, handed out once), or a trial converted to a paid term. */
  function purchase(order: Order, existing: LicenseRow | undefined, at: number) {
    const customerId = order.customer.id
    if (order.sku === undefined) throw new DomainError('invalid', 'SKU required', 'a purchase names a SKU')
    const start = Math.floor(at / 1000) * 1000
    const term = { termStart: start, termEnd: addMonths(start, order.termMonths ?? 12), at }
    if (existing?.status === 'active' && existing.trial_end !== null) {
      if (order.trialDays !== undefined)
        throw new DomainError(
          'conflict',
          'Already in trial',
          `${customerId} is in a trial: buy to convert it`,
        )
      repo.convertTrial(customerId, {
        sku: order.sku,
        seats: order.seats ?? existing.seats,
        addons: order.addons ?? (JSON.parse(existing.addons) as string[]),
        ...term,
      })
      return { status: 200 as const, credentials: undefined }
    }
    if (existing?.status === 'active')
      throw new DomainError(
        'conflict',
        'Already licensed',
        `${customerId} has an active license: place an upgrade`,
      )
    if (existing?.status === 'revoked')
      throw new DomainError(
        'conflict',
        'License revoked',
        `${customerId}'s license was revoked; ask an admin`,
      )
    const credentials = { apiKey: newSecret('ck'), licenseKey: newSecret('lk') }
    if (repo.customer(customerId) === undefined)
      repo.insertCustomer(customerId, order.customer.name ?? customerId, hashSecret(credentials.apiKey), at)
    else repo.setApiKey(customerId, hashSecret(credentials.apiKey))
    const trialEnd = order.trialDays === undefined ? null : start + order.trialDays * DAY_MS
    if (trialEnd !== null) takeTrial(customerId, order.sku, at)
    repo.upsertLicense({
      customerId,
      licenseKeyHash: hashSecret(credentials.licenseKey),
      sku: order.sku,
      seats: order.seats ?? 1,
      addons: order.addons ?? [],
      ...term,
      ...(trialEnd === null ? {} : { termEnd: trialEnd }),
      trialEnd,
    })
    return { status: 201 as const, credentials }
  }

  function change(order: Order, at: number): void {
    const customerId = order.customer.id
    const plan = order.sku === undefined ? undefined : catalog.plans.get(order.sku)
    switch (order.type) {
      case 'upgrade':
      case 'downgrade': {
        const license = activeLicense(repo, customerId)
        const from = catalog.plans.get(license.sku)
        if (from === undefined)
          throw new DomainError(
            'conflict',
            'Plan unavailable',
            `the plan ${license.sku} is not in the catalog`,
          )
        const to = plan ?? from
        if (order.type === 'upgrade' ? to.tier < from.tier : to.tier > from.tier)
          throw new DomainError(
            'invalid',
            `Not a ${order.type}`,
            `${license.sku} (tier ${from.tier}) to ${order.sku} (tier ${to.tier}) is not a ${order.type}`,
          )
        const addons = order.addons ?? (JSON.parse(license.addons) as string[])
        const seats = order.seats ?? license.seats
        repo.changePlan(customerId, order.sku ?? license.sku, seats, addons, at)
        if (seats < license.seats) releaseSeatsPast(customerId, seats, at)
        return
      }
      case 'renewal': {
        const license = activeLicense(repo, customerId)
        if (license.trial_end !== null)
          throw new DomainError(
            'invalid',
            'Trial not renewable',
            `${customerId} is in a trial: place a purchase`,
          )
        const end = addMonths(
          Math.max(license.term_end, Math.floor(at / 1000) * 1000),
          order.termMonths ?? 12,
        )
        repo.renew(customerId, end, at)
        return
      }
      case 'topup': {
        activeLicense(repo, customerId)
        if (order.pack === undefined)
          throw new DomainError('invalid', 'Pack required', 'a top-up names a credit pack (pack)')
        options.credits.topUp(customerId, order.pack, order.quantity ?? 1, order.orderId, at)
        return
      }
      case 'cancellation':
        activeLicense(repo, customerId)
        repo.setStatus(customerId, 'cancelled', at)
        repo.revokeLive(customerId, at)
        events.record('revocations', customerId)
        return
    }
  }

  return {
    /** Creates or changes a license from an order; idempotent by order id (the same body answers the same). */
    apply(order: Order): { status: 200 | 201; body: Record<string, unknown> } {
      const bodyHash = createHash('sha256').update(JSON.stringify(order)).digest('hex')
      return events.transaction(() => {
        const seen = repo.order(order.orderId)
        if (seen) {
          if (seen.body_hash !== bodyHash)
            throw new DomainError(
              'conflict',
              'Order id reused',
              `order ${order.orderId} was placed before with another body`,
            )
          return { status: seen.status, body: { ...JSON.parse(seen.response), replayed: true } }
        }
        const at = now()
        const customerId = order.customer.id
        const existing = repo.license(customerId)
        checkCatalog(catalog, order, existing)
        let status: 200 | 201 = 200
        let credentials: { apiKey: string; licenseKey: string } | undefined
        if (order.type === 'purchase') ({ status, credentials } = purchase(order, existing, at))
        else change(order, at)
        events.record('entitlements', customerId)
        const body = {
          orderId: order.orderId,
          type: order.type,
          license: licenseView(repo.license(customerId)!),
        }
        repo.insertOrder(order.orderId, customerId, bodyHash, status, JSON.stringify(body), at)
        // Credentials go out once, with the first answer; the stored answer never holds them.
        return { status, body: credentials ? { ...body, credentials } : body }
      })
    },

    /** Remembers an order signature; `false` when it was seen before (a replay). Forgets those past `maxAgeMs`. */
    rememberSignature(signature: string, maxAgeMs: number): boolean {
      const at = now()
      return repo.rememberSignature(signature, at, at - maxAgeMs)
    },
  }
}

export type OrderService = ReturnType<typeof createOrderService>
