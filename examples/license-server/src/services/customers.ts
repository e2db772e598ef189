import { DomainError } from '../errors.js'
import type { Repository } from '../repository.js'
import { hashSecret, newSecret, type Scope } from './credentials.js'
import type { EventBus } from './events.js'
import { licenseView } from './licenses.js'
import type { UsageService } from './usage.js'

/** Customers and their credentials: who a key belongs to, the admin's reads, revocation and new credentials. */
export function createCustomerService(options: {
  repo: Repository
  events: EventBus
  usage: UsageService
  now: () => number
}) {
  const { repo, events, usage, now } = options

  function requireCustomer(customerId: string) {
    const customer = repo.customer(customerId)
    if (customer === undefined)
      throw new DomainError('not_found', 'Unknown customer', `no customer ${customerId}`)
    return customer
  }

  return {
    /** Resolves a customer's bearer credential (an API key or a license key) to its scope. */
    scopeOfCredential(secret: string): Scope | undefined {
      const hash = hashSecret(secret)
      const byApiKey = repo.customerIdByApiKey(hash)
      if (byApiKey !== undefined) return { kind: 'customer', customerId: byApiKey }
      const byLicenseKey = repo.customerIdByLicenseKey(hash)
      return byLicenseKey === undefined
        ? undefined
        : { kind: 'customer', customerId: byLicenseKey, device: true }
    },

    list() {
      return repo.customersWithLicenses().map((row) => ({
        id: row.id,
        name: row.name,
        license: row.sku ? licenseView(row) : null,
      }))
    },

    detail(customerId: string) {
      const customer = requireCustomer(customerId)
      const license = repo.license(customerId)
      return {
        id: customer.id,
        name: customer.name,
        license: license ? licenseView(license) : null,
        grants: repo.grants(customerId),
        devices: repo.devices(customerId).map((device) => ({
          fingerprint: device.fingerprint,
          activatedAt: device.activated_at,
          lastSeen: device.last_seen,
          ...(device.offline_until > now()
            ? { offlineUntil: new Date(device.offline_until).toISOString() }
            : {}),
        })),
        usage: usage.totals(customerId),
        alerts: usage.alerts(customerId),
      }
    },

    /** Usage per metric and window (included and overage where a cap is soft), and the thresholds it crossed. */
    usage(customerId: string) {
      requireCustomer(customerId)
      return {
        usage: usage.totals(customerId),
        resources: usage.resources(customerId),
        alerts: usage.alerts(customerId),
      }
    },

    /** Ends a license at once: every live token is revoked and clients hear of it. */
    revoke(customerId: string) {
      return events.transaction(() => {
        if (repo.license(customerId) === undefined)
          throw new DomainError('not_found', 'No license', `no license for customer ${customerId}`)
        const at = now()
        repo.setStatus(customerId, 'revoked', at)
        const revoked = repo.revokeLive(customerId, at)
        events.record('revocations', customerId)
        events.record('entitlements', customerId)
        return { customerId, status: 'revoked' as const, tokensRevoked: revoked }
      })
    },

    /** New credentials for a customer: the old ones stop working at once, and streams opened with them end. */
    rotateCredentials(customerId: string) {
      requireCustomer(customerId)
      const credentials = { apiKey: newSecret('ck'), licenseKey: newSecret('lk') }
      repo.transaction(() => {
        repo.setApiKey(customerId, hashSecret(credentials.apiKey))
        repo.setLicenseKey(customerId, hashSecret(credentials.licenseKey))
      })
      events.credentialsReplaced(customerId)
      return { customerId, credentials }
    },
  }
}

export type CustomerService = ReturnType<typeof createCustomerService>
