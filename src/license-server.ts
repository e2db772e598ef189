import { readBoundedText } from './bounded-body.js'
import { EntitlementError } from './errors.js'
import type { Platform } from './platform.js'
import { retryAfterMs } from './retry.js'
import type { UsageResponse } from './usage/types.js'

/** How the client reaches the license server (protocol v1, `docs/client.md`). */
export interface LicenseServerOptions {
  /** Base URL; the client calls `v1/entitlements/{subject}`, `v1/revocations` and `v1/events` below it. */
  url: string | URL
  /** Sent as `Authorization: Bearer …`. */
  apiKey?: string | undefined
  /** Extra headers for every request. */
  headers?: Record<string, string> | undefined
  /** Abort a request after this long. Default 10 000 ms. */
  timeoutMs?: number | undefined
}

export type TokenResponse =
  | { readonly status: 'ok'; readonly token: string; readonly etag: string | undefined }
  | { readonly status: 'not_modified' }
  | { readonly status: 'not_found' }
  /** 410: the customer's license ended (revoked, cancelled). */
  | { readonly status: 'gone' }

export interface RevocationsResponse {
  readonly status: 'ok' | 'not_modified'
  readonly revoked: readonly string[]
  readonly etag: string | undefined
}

/**
 * The per-line outcome of a stored batch (protocol v1, `UsageBatchAnswer`): the lines it refused, with why, read
 * from `lines` (one answer per line) or, from a server that lists only those, `rejected`. `at` is the server's
 * time of storing: its `Date` header when the body has none.
 */
function readUsageAnswer(
  answer: unknown,
  response: Response,
  now: number,
): { at: number; refused: Array<{ id: string; reason: string }> } {
  const body = (typeof answer === 'object' && answer !== null ? answer : {}) as {
    at?: unknown
    lines?: unknown
    rejected?: unknown
  }
  const date = Date.parse(response.headers.get('date') ?? '')
  const at =
    typeof body.at === 'number' && Number.isFinite(body.at) ? body.at : Number.isNaN(date) ? now : date
  const listed = Array.isArray(body.lines) ? body.lines : Array.isArray(body.rejected) ? body.rejected : []
  const refused: Array<{ id: string; reason: string }> = []
  for (const line of listed as Array<{ id?: unknown; status?: unknown; reason?: unknown } | null>) {
    if (typeof line !== 'object' || line === null || typeof line.id !== 'string') continue
    if (Array.isArray(body.lines) && line.status !== 'refused') continue
    refused.push({ id: line.id, reason: typeof line.reason === 'string' ? line.reason : 'refused' })
  }
  return { at, refused }
}

/**
 * The most a body may hold before it is refused (`readBoundedText`): a token is at most a few KB (the verifier's
 * default limit is 16 384 characters), a revocation list lists every revoked token still alive, and a usage answer
 * one short answer per line of a batch.
 */
const MAX_TOKEN_BYTES = 1_048_576
const MAX_REVOCATIONS_BYTES = 16_777_216
const MAX_USAGE_ANSWER_BYTES = 4_194_304
const MAX_PROBLEM_BYTES = 65_536

const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** What a problem+json body says went wrong (its `detail`, else its `title`), or the start of a plain body. */
function problemDetail(text: string): string {
  const problem = parseJson(text) as { detail?: unknown; title?: unknown } | null | undefined
  const said = problem?.detail ?? problem?.title
  return typeof said === 'string' ? said : text.slice(0, 200) || 'no reason given'
}

/** A failure talking to the server: `server_unavailable` (retry later) or `server_rejected` (a 4xx). */
function failure(
  response: Response | undefined,
  cause: unknown,
  now: number,
): EntitlementError & { retryAfterMs?: number } {
  if (response === undefined) {
    return new EntitlementError('server_unavailable', 'the license server could not be reached', { cause })
  }
  const retryable = response.status >= 500 || response.status === 429 || response.status === 408
  const error: EntitlementError & { retryAfterMs?: number } = new EntitlementError(
    retryable ? 'server_unavailable' : 'server_rejected',
    `the license server answered ${response.status}`,
    { cause },
  )
  const after = retryAfterMs(response.headers.get('retry-after'), now)
  if (after !== undefined) error.retryAfterMs = after
  return error
}

/** The license server as the client sees it: three requests, each with its own timeout on the injected clock. */
export function createLicenseServerClient(options: LicenseServerOptions, platform: Platform) {
  const base = new URL(String(options.url).replace(/\/?$/, '/'))
  const timeoutMs = options.timeoutMs ?? 10_000
  // Plain fetch: retries, timeouts and HTTP errors are this module's and the retry state's, not a library's.
  const common = {
    ...options.headers,
    ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
  }

  /**
   * Runs a request and `read`s its answer inside one timeout on the platform's timers (tests time out without
   * waiting), so a server that sends headers and then stalls the body times out too. `signal` aborts it from
   * outside while it runs; a body `read` hands out (the event stream) is the caller's to cancel. Its listener is
   * removed when the request ends: the event stream passes the same signal to every reconnect, and a listener
   * left per request grew without bound (Node warns past ten).
   */
  async function request<T>(
    path: string,
    init: { headers: Record<string, string>; method?: 'get' | 'post'; body?: string; keepalive?: boolean },
    read: (response: Response) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    const controller = new AbortController()
    const abort = () =>
      controller.abort(new EntitlementError('server_unavailable', `no answer within ${timeoutMs} ms`))
    const timer = platform.setTimeout(abort, timeoutMs)
    const abortFromOutside = () => controller.abort(signal?.reason)
    signal?.addEventListener('abort', abortFromOutside, { once: true })
    // Not every fetch ends a body that is already streaming when its signal aborts: race the read against the
    // abort, and cancel the body so nothing is left open.
    const aborted = new Promise<never>((_, reject) => {
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true })
    })
    try {
      const { method = 'get', headers, ...rest } = init
      const sent = platform.fetch(new URL(path, base), {
        ...rest,
        method: method.toUpperCase(),
        headers: { ...common, ...headers },
        signal: controller.signal,
      })
      const response = await Promise.race([sent, aborted])
      controller.signal.addEventListener('abort', () => response.body?.cancel().catch(() => {}), {
        once: true,
      })
      return await Promise.race([read(response), aborted])
    } catch (cause) {
      if (cause instanceof EntitlementError) throw cause
      throw failure(undefined, controller.signal.aborted ? controller.signal.reason : cause, platform.now())
    } finally {
      platform.clearTimeout(timer)
      signal?.removeEventListener('abort', abortFromOutside)
    }
  }

  return {
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
        { headers },
        async (response) => {
          if (!response.ok || response.body === null) throw failure(response, undefined, platform.now())
          return response.body
        },
        signal,
      )
    },

    /**
     * Sends one usage batch (`POST v1/usage`, its id as `Idempotency-Key` and in the body, since a beacon-like
     * keepalive request is the one place a header could be lost). Never throws: every outcome is a value the
     * meter acts on.
     */
    async sendUsage(batchId: string, body: string, keepalive: boolean): Promise<UsageResponse> {
      const headers = {
        accept: 'application/json',
        'content-type': 'application/json',
        'idempotency-key': batchId,
      }
      try {
        return await request('v1/usage', { method: 'post', headers, body, keepalive }, async (response) => {
          const status = response.status
          if (response.ok)
            return {
              kind: 'ok',
              ...readUsageAnswer(
                parseJson(
                  await readBoundedText(response, MAX_USAGE_ANSWER_BYTES, 'server_rejected').catch(() => ''),
                ),
                response,
                platform.now(),
              ),
            }
          const text = await readBoundedText(response, MAX_PROBLEM_BYTES, 'server_rejected').catch(() => '')
          const error = failure(response, text, platform.now())
          if (status === 413) return { kind: 'too_large', error }
          if (status === 401 || status === 403 || status === 404 || status === 405 || status === 501)
            return { kind: 'refused', error }
          if (error.code === 'server_unavailable')
            return { kind: 'retry', error, retryAfterMs: error.retryAfterMs }
          return {
            kind: 'rejected',
            error: new EntitlementError('usage_rejected', `${error.message}: ${problemDetail(text)}`, {
              cause: error,
            }),
          }
        })
      } catch (error) {
        const wrapped =
          error instanceof EntitlementError
            ? error
            : new EntitlementError('server_unavailable', 'the usage batch could not be sent', {
                cause: error,
              })
        return { kind: 'retry', error: wrapped, retryAfterMs: undefined }
      }
    },
  }
}

export type LicenseServerClient = ReturnType<typeof createLicenseServerClient>
