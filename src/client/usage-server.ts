import { createLicenseServerClient, type LicenseServerClient } from '../license-server.js'
import type { Platform } from '../platform.js'
import type { EntitlementsClientOptions } from './options.js'

/** Where usage goes: the license server, unless `usage` names another place or other credentials. */
export function usageServerFor(
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
