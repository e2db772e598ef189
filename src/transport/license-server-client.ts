import { EntitlementError } from '../core/errors.js'
import type { Platform } from '../platform/platform.js'
import { readBoundedText } from './bounded-body.js'
import { type LeaseAnswer, readLeaseAnswer } from './lease-answer.js'
import { createRequester, type Endpoint, failure, parseJson } from './requester.js'

export type { Endpoint, LicenseServerOptions } from './requester.js'

export type TokenResponse =
  | { readonly status: 'ok'; readonly token: string; readonly etag: string | undefined }
  | { readonly status: 'not_modified' }
  | { readonly status: 'not_found' }
  /** 410: the customer's license ended (revoked, cancelled). */
  | { readonly status: 'gone' }

/** One change, as `GET v1/changes` lists it: what an event of the stream would have said. */
export interface Change {
  readonly id: string
  readonly event: string
  readonly subject: string | null
}

/** `GET v1/changes`: the changes after a cursor, and the cursor to ask from next. */
export interface ChangesResponse {
  readonly changes: readonly Change[]
  readonly last: string
  /** More changes wait past this page: ask again at once. */
  readonly more: boolean
}

export interface RevocationsResponse {
  readonly status: 'ok' | 'not_modified'
  readonly revoked: readonly string[]
  readonly etag: string | undefined
}

/**
 * The most a body may hold before it is refused (`readBoundedText`): a token is at most a few KB (the verifier's
 * default limit is 16 384 characters), a revocation list lists every revoked token still alive. (A usage answer's
 * is the meter's: `usage-endpoint.ts`.)
 */
const MAX_TOKEN_BYTES = 1_048_576
const MAX_REVOCATIONS_BYTES = 16_777_216
/** A refusal's problem document: the same bound on every endpoint, the usage one's too (`usage-endpoint.ts`). */
export const MAX_PROBLEM_BYTES = 65_536
const MAX_CHANGES_BYTES = 1_048_576
const MAX_LEASE_BYTES = 65_536

/** Statuses that say this server will not hold an event stream for this client: polling is the way. */
const STREAM_REFUSED = new Set([403, 404, 405, 429, 501])

function readChanges(body: unknown): ChangesResponse {
  const answer = body as { events?: unknown; last?: unknown; more?: unknown } | undefined
  if (!Array.isArray(answer?.events) || typeof answer.last !== 'string')
    throw new EntitlementError('server_rejected', 'the changes answer is not { events: [...], last }')
  const changes: Change[] = []
  for (const item of answer.events as Array<{ id?: unknown; event?: unknown; subject?: unknown } | null>) {
    if (typeof item?.id !== 'string' || typeof item.event !== 'string') continue
    changes.push({
      id: item.id,
      event: item.event,
      subject: typeof item.subject === 'string' ? item.subject : null,
    })
  }
  return { changes, last: answer.last, more: answer.more === true }
}

/**
 * The license server as the SDK sees it (protocol v1): one mapper per endpoint from its HTTP answer to a value the
 * client acts on. The requests themselves (timeout, abort, bounded reads, failures) are the requester's.
 */
export function createLicenseServerClient(endpoint: Endpoint, platform: Platform) {
  const request = createRequester(endpoint, platform)

  function leaseRequest(path: string, method: 'post', body: string): Promise<LeaseAnswer> {
    const headers = { accept: 'application/json', 'content-type': 'application/json' }
    return request(path, { method, headers, body }, async (response) => {
      const text = await readBoundedText(response, MAX_LEASE_BYTES, 'server_rejected')
      return readLeaseAnswer(response, text, platform.now())
    })
  }

  return {
    /** The endpoint's requests, for what metering sends (`usage-endpoint.ts`), kept out of a client that checks. */
    request,
    fetchToken(subject: string, etag: string | undefined): Promise<TokenResponse> {
      const headers = {
        accept: 'application/entitlement+jwt, application/jwt, text/plain',
        ...(etag ? { 'if-none-match': etag } : {}),
      }
      return request(`v1/entitlements/${encodeURIComponent(subject)}`, { headers }, async (response) => {
        if (response.status === 304) return { status: 'not_modified' }
        if (response.status === 404) return { status: 'not_found' }
        if (response.status === 410) return { status: 'gone' }
        if (!response.ok) throw failure(response, undefined, platform.now())
        const token = (await readBoundedText(response, MAX_TOKEN_BYTES, 'token_too_large')).trim()
        return { status: 'ok', token, etag: response.headers.get('etag') ?? undefined }
      })
    },

    fetchRevocations(etag: string | undefined): Promise<RevocationsResponse> {
      const headers = { accept: 'application/json', ...(etag ? { 'if-none-match': etag } : {}) }
      return request('v1/revocations', { headers }, async (response): Promise<RevocationsResponse> => {
        if (response.status === 304) return { status: 'not_modified', revoked: [], etag }
        if (!response.ok) throw failure(response, undefined, platform.now())
        const body = parseJson(await readBoundedText(response, MAX_REVOCATIONS_BYTES, 'server_rejected')) as
          | { revoked?: unknown }
          | undefined
        const revoked = body?.revoked
        if (!Array.isArray(revoked) || !revoked.every((id) => typeof id === 'string')) {
          throw new EntitlementError('server_rejected', 'the revocation list is not { "revoked": [string] }')
        }
        return { status: 'ok', revoked, etag: response.headers.get('etag') ?? undefined }
      })
    },

    /**
     * Opens the event stream; resolves with its body once connected. The stream has no timeout once open, and
     * `signal` aborts only the opening: cancel the body to end it.
     */
    openEvents(signal: AbortSignal, lastEventId: string | undefined): Promise<ReadableStream<Uint8Array>> {
      const headers = {
        accept: 'text/event-stream',
        ...(lastEventId ? { 'last-event-id': lastEventId } : {}),
      }
      return request(
        'v1/events',
        { headers, background: true },
        async (response) => {
          if (STREAM_REFUSED.has(response.status)) {
            const cause = failure(response, undefined, platform.now())
            throw new EntitlementError(
              'events_refused',
              `the license server refused the event stream (${response.status}${response.status === 429 ? ': too many streams for this credential' : ''})`,
              { cause, retryAfterMs: cause.retryAfterMs },
            )
          }
          if (!response.ok || response.body === null) throw failure(response, undefined, platform.now())
          return response.body
        },
        signal,
      )
    },

    /** `GET v1/changes?after=…`: what the event stream would have said since `after` (no cursor: where to start). */
    fetchChanges(after: string | undefined): Promise<ChangesResponse> {
      const path = after === undefined ? 'v1/changes' : `v1/changes?after=${encodeURIComponent(after)}`
      return request(path, { headers: { accept: 'application/json' } }, async (response) => {
        if (!response.ok) throw failure(response, undefined, platform.now())
        return readChanges(parseJson(await readBoundedText(response, MAX_CHANGES_BYTES, 'server_rejected')))
      })
    },

    /** `POST v1/leases`: a seat of `pool` for `holder` (a borrow of `borrowSec` seconds when given). */
    acquireLease(body: {
      subject: string | undefined
      pool: string
      holder: string
      borrow?: number | undefined
      metadata?: Readonly<Record<string, string>> | undefined
    }): Promise<LeaseAnswer> {
      return leaseRequest('v1/leases', 'post', JSON.stringify(body))
    },

    /** `POST v1/leases/{id}/heartbeat`: renews the lease from now, or revives it. */
    renewLease(id: string): Promise<LeaseAnswer> {
      return leaseRequest(`v1/leases/${encodeURIComponent(id)}/heartbeat`, 'post', '{}')
    },

    /** `DELETE v1/leases/{id}`: gives the seat back. Resolves once the server confirmed (or knew it already). */
    releaseLease(id: string, keepalive = false): Promise<void> {
      const headers = { accept: 'application/json' }
      return request(
        `v1/leases/${encodeURIComponent(id)}`,
        { method: 'delete', headers, keepalive },
        async (response) => {
          // 404 or 410: the lease is not held any more, which is what was asked.
          if (response.ok || response.status === 404 || response.status === 410) return
          throw failure(
            response,
            await readBoundedText(response, MAX_PROBLEM_BYTES, 'server_rejected').catch(() => ''),
            platform.now(),
          )
        },
      )
    },
  }
}

export type LicenseServerClient = ReturnType<typeof createLicenseServerClient>
