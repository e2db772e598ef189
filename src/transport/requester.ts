import { EntitlementError } from '../core/errors.js'
import type { Platform } from '../platform/platform.js'
import { cancelBody } from './bounded-body.js'
import { retryAfterMs } from './retry.js'

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

/** Where requests go and with what, every field resolved: the license server, the usage endpoint, the revocations. */
export interface Endpoint {
  readonly url: string | URL
  readonly apiKey: string | undefined
  readonly headers: Record<string, string> | undefined
  readonly timeoutMs: number
}

/** What a request is sent with, beside its path. */
export interface ServerRequest {
  readonly headers: Record<string, string>
  readonly method?: 'get' | 'post' | 'delete'
  readonly body?: string
  readonly keepalive?: boolean
  /** A connection that stays open while the client runs (the event stream): sent with `fetchInBackground`. */
  readonly background?: boolean
}

export const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** What a problem+json body says went wrong (its `detail`, else its `title`), or the start of a plain body. */
export function problemDetail(text: string): string {
  const problem = parseJson(text) as { detail?: unknown; title?: unknown } | null | undefined
  const said = problem?.detail ?? problem?.title
  return typeof said === 'string' ? said : text.slice(0, 200) || 'no reason given'
}

/**
 * A failure talking to the server: `server_unavailable` (retry later: no answer, 5xx, 429, 408, with the server's
 * `Retry-After`) or `server_rejected` (another 4xx).
 */
export function failure(response: Response | undefined, cause: unknown, now: number): EntitlementError {
  if (response === undefined) {
    return new EntitlementError('server_unavailable', 'the license server could not be reached', { cause })
  }
  const retryable = response.status >= 500 || response.status === 429 || response.status === 408
  return new EntitlementError(
    retryable ? 'server_unavailable' : 'server_rejected',
    `the license server answered ${response.status}`,
    { cause, retryAfterMs: retryAfterMs(response.headers.get('retry-after'), now) },
  )
}

/** Runs one request to the license server and reads its answer; see {@link createRequester}. */
export type Requester = <T>(
  path: string,
  init: ServerRequest,
  read: (response: Response) => Promise<T>,
  signal?: AbortSignal,
) => Promise<T>

/**
 * The one way the SDK makes a request of the license server: its base URL and credentials, a timeout on the
 * platform's timers (tests time out without waiting) around the request *and* the reading of its answer (a server
 * that sends headers and then stalls the body times out too), an abort from outside, and any failure to get an
 * answer mapped to `server_unavailable`. Plain fetch: retries are the callers' and the retry state's.
 */
export function createRequester(endpoint: Endpoint, platform: Platform): Requester {
  const { timeoutMs } = endpoint
  const base = new URL(String(endpoint.url).replace(/\/?$/, '/'))
  const common = {
    ...endpoint.headers,
    ...(endpoint.apiKey ? { authorization: `Bearer ${endpoint.apiKey}` } : {}),
  }

  /**
   * `signal` aborts the request from outside while it runs; a body `read` hands out (the event stream) is the
   * caller's to cancel. Its listener is removed when the request ends: the event stream passes the same signal to
   * every reconnect, and a listener left per request grew without bound (Node warns past ten).
   *
   * One promise settles the request: the work's own end, or the abort (the timeout's or the caller's), whichever
   * comes first. Not every fetch ends a body that is already streaming when its signal aborts, so the abort does not
   * wait for the work: it rejects at once and cancels the body, so nothing is left open. No listener is added to the
   * request's own signal (a request is made per customer loaded: each listener and race was a cost of every load).
   */
  return function request<T>(
    path: string,
    init: ServerRequest,
    read: (response: Response) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    const controller = new AbortController()
    let response: Response | undefined
    let ended = false
    let settleAborted: (reason: unknown) => void = () => {}
    const abort = (reason: unknown) => {
      if (ended) return
      ended = true
      controller.abort(reason)
      if (response !== undefined) cancelBody(response)
      settleAborted(reason)
    }
    const timer = platform.setTimeout(
      () => abort(new EntitlementError('server_unavailable', `no answer within ${timeoutMs} ms`)),
      timeoutMs,
    )
    const abortFromOutside = () => abort(signal?.reason)
    signal?.addEventListener('abort', abortFromOutside, { once: true })
    if (signal?.aborted) abortFromOutside()

    async function work(): Promise<T> {
      const { method = 'get', headers, background, ...rest } = init
      const send = (background && platform.fetchInBackground) || platform.fetch
      response = await send(new URL(path, base), {
        ...rest,
        method: method.toUpperCase(),
        headers: { ...common, ...headers },
        signal: controller.signal,
      })
      if (ended) cancelBody(response)
      return read(response)
    }
    const mapped = (cause: unknown): EntitlementError =>
      cause instanceof EntitlementError
        ? cause
        : failure(undefined, controller.signal.aborted ? controller.signal.reason : cause, platform.now())

    return new Promise<T>((resolve, reject) => {
      const done = () => {
        ended = true
        platform.clearTimeout(timer)
        signal?.removeEventListener('abort', abortFromOutside)
      }
      settleAborted = (reason) => {
        done()
        reject(mapped(reason))
      }
      if (ended) return settleAborted(controller.signal.reason)
      work().then(
        (value) => {
          if (ended) return
          done()
          resolve(value)
        },
        (cause) => {
          if (ended) return
          done()
          reject(mapped(cause))
        },
      )
    })
  }
}
