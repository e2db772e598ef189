import type { EntitlementError } from '../errors.js'
import { createLicenseServerClient, type LicenseServerClient } from '../license-server.js'
import type { Platform } from '../platform.js'
import { createUsageMeter, type UsageMeter } from '../usage/meter.js'
import type { EntitlementsClientOptions } from './options.js'
import type { SerializedStorage } from './serialized-storage.js'
import { type Entry, OWN } from './token-cache.js'
import { windowFor } from './usage-window.js'

/** Where usage goes: the license server, unless `usage` names another place or other credentials. */
function usageServerFor(
  options: EntitlementsClientOptions,
  server: LicenseServerClient | undefined,
  platform: Platform,
): LicenseServerClient | undefined {
  const usage = options.usage
  const url = usage?.url ?? options.server?.url
  if (url === undefined) return undefined
  const sameAsServer =
    usage?.url === undefined &&
    usage?.apiKey === undefined &&
    usage?.headers === undefined &&
    usage?.timeoutMs === undefined
  if (server !== undefined && sameAsServer) return server
  return createLicenseServerClient(
    {
      url,
      apiKey: usage?.apiKey ?? options.server?.apiKey,
      headers: usage?.headers ?? options.server?.headers,
      timeoutMs: usage?.timeoutMs ?? options.server?.timeoutMs,
    },
    platform,
  )
}

/**
 * The client's usage meter, when it has somewhere to send usage: it reads the customer's token in memory (`peek`)
 * for the cap's window and the subject on the wire, and journals into the client's storage.
 */
export function createClientMeter(
  options: EntitlementsClientOptions,
  server: LicenseServerClient | undefined,
  host: {
    platform: Platform
    storage: SerializedStorage
    peek: (key: string) => Entry | undefined
    report: (error: EntitlementError) => void
    background: (work: Promise<unknown>) => void
  },
): UsageMeter | undefined {
  const usageServer = usageServerFor(options, server, host.platform)
  if (usageServer === undefined) return undefined
  return createUsageMeter(options.usage ?? {}, {
    platform: host.platform,
    send: (batchId, body, keepalive) => usageServer.sendUsage(batchId, body, keepalive),
    windowFor: (entry, metric, now) => windowFor((entry as Entry | undefined)?.entitlements, metric, now),
    subjectOf: (key) => (key === OWN ? host.peek(OWN)?.entitlements.subject : key),
    issuedAt: (key) => host.peek(key)?.entitlements.issuedAt,
    read: host.storage.read,
    write: host.storage.write,
    report: host.report,
    background: host.background,
  })
}
