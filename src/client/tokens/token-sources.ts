import type { DecisionReason } from '../../core/decision.js'
import { EntitlementError } from '../../core/errors.js'
import type { Platform } from '../../platform/platform.js'
import type { LicenseServerClient } from '../../transport/license-server-client.js'
import type { Entry } from './cache-entry.js'
import type { TokenVerifier, Verified } from './token-verifier.js'

/**
 * What a token source answered for a customer: a new token (verified), the token in memory is still the one
 * (`unchanged`, with how long to wait at least before asking again when it is already due), or the license is
 * gone (`ended`). A failure is thrown as an `EntitlementError`: whether it proves the token bad or only that the
 * source is out of reach is the cache's to decide.
 */
export type SourceOutcome =
  | {
      readonly kind: 'token'
      readonly verified: Verified
      readonly token: string
      readonly etag: string | undefined
    }
  | { readonly kind: 'unchanged'; readonly whenDueMs: number | undefined }
  | { readonly kind: 'ended'; readonly reason: Extract<DecisionReason, 'not_in_plan' | 'revoked'> }

/** Where tokens come from. Asking never touches the cache: the cache acts on the outcome. */
export interface TokenSource {
  /** Asks for `key`'s token, given what is in memory. */
  fetch(key: string, current: Entry | undefined): Promise<SourceOutcome>
  /** Whether a token it hands out was signed just now by the license server (and so vouches for the time). */
  readonly signsNow: boolean
  /** Whether it can ever hand out another token (a token string cannot: nothing renews it). */
  readonly renews: boolean
}

/** What the license server source counts. */
export interface ServerSourceStats {
  fetches: number
  notModified: number
}

/** The license server, multi-tenant: `GET v1/entitlements/{subject}`, conditional on the token in memory. */
export function createServerSource(
  server: LicenseServerClient,
  verifier: TokenVerifier,
): TokenSource & { readonly stats: Readonly<ServerSourceStats> } {
  const stats: ServerSourceStats = { fetches: 0, notModified: 0 }
  return {
    signsNow: true,
    renews: true,
    stats,
    async fetch(key, current) {
      stats.fetches++
      const response = await server.fetchToken(key, current?.etag)
      if (response.status === 'not_modified' && current) {
        stats.notModified++
        // Protocol v1 has servers re-issue past half-life; a server that answers 304 for a token due for renewal
        // is asked again with backoff.
        return { kind: 'unchanged', whenDueMs: undefined }
      }
      // A license that ended (410) answers `revoked`; a customer with none (404) answers `not_in_plan`.
      if (response.status === 'not_found') return { kind: 'ended', reason: 'not_in_plan' }
      if (response.status === 'gone') return { kind: 'ended', reason: 'revoked' }
      if (response.status !== 'ok')
        throw new EntitlementError('server_rejected', 'a 304 answered a request that sent no ETag')
      const verified = await verifier.verify(response.token)
      if (verified.entitlements.subject !== key) {
        throw new EntitlementError(
          'claims_invalid',
          `the server sent a token for ${verified.entitlements.subject}, not ${key}`,
        )
      }
      return { kind: 'token', verified, token: response.token, etag: response.etag }
    },
  }
}

/** Calls the app's own token source; its failures (a missing license file) get their own code. */
async function readTokenSource(source: () => string | Promise<string>): Promise<string> {
  try {
    return await source()
  } catch (cause) {
    throw new EntitlementError('token_unavailable', 'the token() source failed', { cause })
  }
}

/** The app's own token, single-tenant: a string (never renewed) or a function read again at each renewal. */
export function createAppSource(
  source: string | (() => string | Promise<string>),
  verifier: TokenVerifier,
  platform: Platform,
): TokenSource {
  return {
    signsNow: false,
    renews: typeof source === 'function',
    async fetch(_key, current) {
      const token = typeof source === 'function' ? await readTokenSource(source) : source
      if (current?.token === token) {
        // A license file not replaced yet: read it again after a tenth of what is left of the token's life, so a
        // year-long license is not re-read every few minutes for months.
        return { kind: 'unchanged', whenDueMs: (current.expiresAt - platform.now()) / 10 }
      }
      return { kind: 'token', verified: await verifier.verify(token), token, etag: undefined }
    },
  }
}
