import { DomainError } from '../errors.js'
import type { Repository } from '../repository.js'
import { hashSecret } from './credentials.js'
import type { EventBus } from './events.js'
import { activeLicense } from './licenses.js'
import type { TokenService } from './tokens.js'

/**
 * Devices bound to a license by its license key, at most `seats` at once. A seat taken by an **offline license**
 * stays taken until that license expires: the token cannot be called back from an air-gapped machine, so freeing
 * the seat early would let one seat become many valid licenses. An admin may release it anyway (a machine known to
 * be destroyed), which revokes its tokens for every app that still checks revocations.
 */
export function createDeviceService(options: {
  repo: Repository
  tokens: TokenService
  events: EventBus
  now: () => number
}) {
  const { repo, tokens, events, now } = options

  function customerOfLicenseKey(licenseKey: string): string {
    const customerId = repo.customerIdByLicenseKey(hashSecret(licenseKey))
    if (customerId === undefined) throw new DomainError('unauthenticated', 'Unknown license key')
    return customerId
  }

  /** Frees a device's seat and revokes the tokens bound to it. */
  function free(customerId: string, fingerprint: string): boolean {
    return events.transaction(() => {
      if (!repo.deleteDevice(customerId, fingerprint)) return false
      repo.revokeLive(customerId, now(), fingerprint)
      events.record('revocations', customerId)
      return true
    })
  }

  return {
    /** Binds a device to the license (at most `seats` devices) and returns a token bound to it. */
    async activate(licenseKey: string, fingerprint: string, offline: boolean) {
      const customerId = customerOfLicenseKey(licenseKey)
      const license = activeLicense(repo, customerId)
      const at = now()
      events.transaction(() => {
        if (repo.device(customerId, fingerprint) !== undefined) {
          repo.touchDevice(customerId, fingerprint, at)
          return
        }
        const active = repo.countDevices(customerId)
        if (active >= license.seats)
          throw new DomainError(
            'conflict',
            'Device limit reached',
            `${active} of ${license.seats} devices are active`,
            {
              limit: license.seats,
              active,
            },
          )
        repo.insertDevice(customerId, fingerprint, at)
      })
      // The seat is held before the offline license is signed: no deactivation can slip in between.
      if (offline) repo.holdOffline(customerId, fingerprint, tokens.offlineUntil(license, at))
      const row = offline
        ? await tokens.issue(license, 'offline', fingerprint)
        : await tokens.current(license, 'device', fingerprint)
      if (offline) repo.holdOffline(customerId, fingerprint, row.expires_at)
      return { customerId, token: row.token, expiresAt: new Date(row.expires_at).toISOString() }
    },

    /** Frees a device's seat, unless an offline license it holds still lives (`409`, until when). */
    deactivate(licenseKey: string, fingerprint: string): void {
      const customerId = customerOfLicenseKey(licenseKey)
      const device = repo.device(customerId, fingerprint)
      if (device === undefined)
        throw new DomainError('not_found', 'Not activated', 'this device is not activated')
      if (device.offline_until > now())
        throw new DomainError(
          'conflict',
          'Offline license outstanding',
          `this device holds an offline license valid until ${new Date(device.offline_until).toISOString()}; its seat is held until then`,
          { heldUntil: new Date(device.offline_until).toISOString() },
        )
      free(customerId, fingerprint)
    },

    /** An admin frees a seat whatever holds it, revoking the device's tokens. */
    release(customerId: string, fingerprint: string): { customerId: string; fingerprint: string } {
      if (!free(customerId, fingerprint))
        throw new DomainError('not_found', 'Not activated', `${customerId} has no device ${fingerprint}`)
      return { customerId, fingerprint }
    },
  }
}

export type DeviceService = ReturnType<typeof createDeviceService>
