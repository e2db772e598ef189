/**
 * What went wrong, in the domain's words: services throw this and never an HTTP status. `app.onError` maps the
 * kind to a status and the whole error to one RFC 9457 problem, once (`problem.ts`).
 */
export type DomainErrorKind =
  /** The request could not be read at all (not JSON, not the content type). */
  | 'malformed'
  | 'unsupported_media_type'
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  /** The license ended (cancelled, revoked). */
  | 'gone'
  | 'too_large'
  /** Headers past what Node reads (16 KiB). */
  | 'headers_too_large'
  | 'invalid'
  | 'too_many'
  /** The server cannot do it now (a plan missing from the catalog): `retryAfterSec` says when to ask again. */
  | 'unavailable'

export class DomainError extends Error {
  constructor(
    readonly kind: DomainErrorKind,
    /** Stable: the problem's `type` is a slug of it. */
    readonly title: string,
    readonly detail?: string,
    readonly extra: Record<string, unknown> = {},
    readonly retryAfterSec?: number,
  ) {
    super(detail ?? title)
    this.name = 'DomainError'
  }
}
