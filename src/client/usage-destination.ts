import type { EntitlementError } from '../core/errors.js'
import type { Platform } from '../platform/platform.js'
import { withGetters } from '../platform/with-getters.js'
import { createLicenseServerClient, type LicenseServerClient } from '../transport/license-server-client.js'
import { sendUsage } from '../transport/usage-endpoint.js'
import { createUsageMeter, type MeterJournalStorage, type UsageMeter } from '../usage/meter.js'
import type { UsageConfig } from './config.js'
import type { SerializedStorage } from './serialized-storage.js'
import { type Entry, SINGLE_TENANT_KEY } from './tokens/cache-entry.js'
import { windowFor } from './usage-window.js'

/**
 * The client's usage meter, sending to the license server (or to the endpoint `usage` names): it reads the
 * customer's token in memory (`peek`) for the cap's window and the subject on the wire, and journals into the
 * client's storage.
 */
export function createClientMeter(
  usage: UsageConfig,
  server: LicenseServerClient | undefined,
  parts: {
    readonly platform: Platform
    readonly storage: SerializedStorage
    /** This writer's journal key, who writes it, and what consume() granted (recorded with each write). */
    readonly journal: Pick<MeterJournalStorage, 'key' | 'owner' | 'granted'>
    readonly peek: (key: string) => Entry | undefined
    readonly report: (error: EntitlementError) => void
    readonly background: (work: Promise<unknown>) => void
  },
): UsageMeter {
  const { endpoint, ...settings } = usage
  const destination =
    endpoint.same && server !== undefined ? server : createLicenseServerClient(endpoint, parts.platform)
  return createUsageMeter(settings, {
    platform: parts.platform,
    send: (batchId, body, keepalive) =>
      sendUsage(destination, () => parts.platform.now(), batchId, body, keepalive),
    tokens: {
      windowFor: (entry, metric, now) => windowFor((entry as Entry | undefined)?.entitlements, metric, now),
      subjectOf: (key) =>
        key === SINGLE_TENANT_KEY ? parts.peek(SINGLE_TENANT_KEY)?.entitlements.subject : key,
      issuedAt: (key) => parts.peek(key)?.entitlements.issuedAt,
    },
    journal: withGetters(
      {
        owner: parts.journal.owner,
        granted: parts.journal.granted,
        read: parts.storage.read,
        write: parts.storage.write,
      },
      // Read when first written: the key names this writer, whose id is made on first use.
      { key: () => parts.journal.key },
    ),
    report: parts.report,
    background: parts.background,
  })
}
