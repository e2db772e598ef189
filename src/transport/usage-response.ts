import { EntitlementError } from '../core/errors.js'
import { parseJson, problemDetail } from './requester.js'

/**
 * What became of a usage batch: `ok` (stored; `refused` lists the lines the server refused one by one), `retry`
 * (not known to be stored: send the same ids again later), `too_large` (413: split it), `rejected` (400, 422: the
 * batch as a whole could not be read; set aside), `refused` (401, 403, 404: stop sending until the app intervenes
 * or a long wait passes).
 */
export type UsageResponse =
  | {
      readonly kind: 'ok'
      readonly at: number
      readonly refused: ReadonlyArray<{ readonly id: string; readonly reason: string }>
    }
  | { readonly kind: 'retry'; readonly error: EntitlementError; readonly retryAfterMs: number | undefined }
  | { readonly kind: 'too_large' | 'rejected' | 'refused'; readonly error: EntitlementError }

/** What `POST v1/usage` answered, as read off the wire: the status, the body (bounded) and its `Date` header. */
export interface UsageAnswer {
  readonly status: number
  readonly body: string
  /** The `Date` header, if any. */
  readonly date: string | null
  /** The answer as an error, for any status but 2xx (`failure()` of the requester). */
  readonly failure: EntitlementError | undefined
}

/** Statuses that say the credentials or the endpoint are wrong: asking again soon cannot help. */
const REFUSED = new Set([401, 403, 404, 405, 501])

/**
 * The per-line outcome of a stored batch (protocol v1, `UsageBatchAnswer`): the lines it refused, with why, read
 * from `lines` (one answer per line) or, from a server that lists only those, `rejected`. `at` is the server's
 * time of storing: its `Date` header when the body has none.
 */
function storedBatch(
  body: string,
  dateHeader: string | null,
  now: number,
): Extract<UsageResponse, { kind: 'ok' }> {
  const parsed = parseJson(body)
  const answer = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as {
    at?: unknown
    lines?: unknown
    rejected?: unknown
  }
  const date = Date.parse(dateHeader ?? '')
  const at =
    typeof answer.at === 'number' && Number.isFinite(answer.at) ? answer.at : Number.isNaN(date) ? now : date
  const perLine = Array.isArray(answer.lines)
  const listed = perLine ? answer.lines : Array.isArray(answer.rejected) ? answer.rejected : []
  const refused: Array<{ id: string; reason: string }> = []
  for (const line of listed as Array<{ id?: unknown; status?: unknown; reason?: unknown } | null>) {
    if (typeof line !== 'object' || line === null || typeof line.id !== 'string') continue
    if (perLine && line.status !== 'refused') continue
    refused.push({ id: line.id, reason: typeof line.reason === 'string' ? line.reason : 'refused' })
  }
  return { kind: 'ok', at, refused }
}

/**
 * Classifies the license server's answer to a usage batch: a pure function of what came back, so every status has
 * its row in a table test. The meter acts on the kind; nothing here retries or waits.
 */
export function classifyUsageAnswer(answer: UsageAnswer, now: number): UsageResponse {
  const { status, failure } = answer
  if (failure === undefined) return storedBatch(answer.body, answer.date, now)
  if (status === 413) return { kind: 'too_large', error: failure }
  if (REFUSED.has(status)) return { kind: 'refused', error: failure }
  if (failure.code === 'server_unavailable')
    return { kind: 'retry', error: failure, retryAfterMs: failure.retryAfterMs }
  return {
    kind: 'rejected',
    error: new EntitlementError('usage_rejected', `${failure.message}: ${problemDetail(answer.body)}`, {
      cause: failure,
    }),
  }
}

/** A batch that never got an answer (no connection, a timeout): sent again later with the same id. */
export function unanswered(error: unknown): UsageResponse {
  const wrapped =
    error instanceof EntitlementError
      ? error
      : new EntitlementError('server_unavailable', 'the usage batch could not be sent', { cause: error })
  return { kind: 'retry', error: wrapped, retryAfterMs: undefined }
}
