import { EntitlementError } from '../core/errors.js'
import { failure, parseJson } from './requester.js'

/**
 * What the license server answered about a lease (`POST v1/leases`, `POST v1/leases/{id}/heartbeat`):
 * - `held`: the lease token, and how long it has left by the server's clock;
 * - `full`: the pool has no free seat (`409`): how many hold it, of how many, and when one may come free;
 * - `gone`: the lease ended for good (`410`: released, or past its revival window, or its seat taken);
 * - `refused`: the license has no such pool, lends no seats, or the request was wrong (another 4xx).
 * A server that cannot be reached, or answers 5xx or 429, throws `server_unavailable`.
 */
export type LeaseAnswer =
  | {
      readonly status: 'held'
      readonly token: string
      readonly expiresInMs: number
      readonly heartbeatMs: number | undefined
      readonly revived: boolean
    }
  | {
      readonly status: 'full'
      readonly inUse: number
      readonly seats: number
      readonly retryAfterMs: number
    }
  | { readonly status: 'gone'; readonly reason: string }
  | { readonly status: 'refused'; readonly reason: string; readonly httpStatus: number }

const seconds = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value * 1000 : undefined

/** Reads one lease answer from its status and body. */
export function readLeaseAnswer(response: Response, text: string, now: number): LeaseAnswer {
  const body = parseJson(text) as Record<string, unknown> | undefined
  const said =
    typeof body?.detail === 'string' ? body.detail : `the license server answered ${response.status}`
  if (response.ok) {
    const expiresInMs = seconds(body?.expiresIn)
    if (typeof body?.lease !== 'string' || expiresInMs === undefined)
      throw new EntitlementError('server_rejected', 'the lease answer is not { lease, expiresIn }')
    return {
      status: 'held',
      token: body.lease,
      expiresInMs,
      heartbeatMs: seconds(body.heartbeat),
      revived: body.revived === true,
    }
  }
  if (response.status === 409 && typeof body?.inUse === 'number' && typeof body.seats === 'number')
    return {
      status: 'full',
      inUse: body.inUse,
      seats: body.seats,
      retryAfterMs: seconds(body.retryAfter) ?? 1000,
    }
  if (response.status === 410) return { status: 'gone', reason: said }
  const error = failure(response, text, now)
  if (error.code === 'server_unavailable') throw error
  return { status: 'refused', reason: said, httpStatus: response.status }
}
