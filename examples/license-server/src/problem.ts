import type { ContentfulStatusCode } from 'hono/utils/http-status'
import { DomainError, type DomainErrorKind } from './errors.js'

const STATUS: Record<DomainErrorKind, ContentfulStatusCode> = {
  malformed: 400,
  unsupported_media_type: 415,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
  too_large: 413,
  headers_too_large: 431,
  invalid: 422,
  too_many: 429,
  unavailable: 503,
}

/** The RFC 9457 body of an error, and its status. `type` is a stable, documented slug of the title. */
export function problemOf(error: DomainError): {
  status: ContentfulStatusCode
  body: Record<string, unknown>
} {
  const status = STATUS[error.kind]
  const slug = error.title
    .toLowerCase()
    .replaceAll(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
  return {
    status,
    body: {
      type: `urn:entitle:problem:${slug}`,
      title: error.title,
      status,
      ...(error.detail ? { detail: error.detail } : {}),
      ...error.extra,
    },
  }
}

const INTERNAL = { type: 'urn:entitle:problem:internal-error', title: 'Internal error', status: 500 }

/** An error as an `application/problem+json` response. Anything that is not a `DomainError` is a bare 500. */
export function problemResponse(error: unknown): Response {
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' }
  if (!(error instanceof DomainError)) return new Response(JSON.stringify(INTERNAL), { status: 500, headers })
  const { status, body } = problemOf(error)
  if (error.retryAfterSec !== undefined) headers['retry-after'] = String(error.retryAfterSec)
  return new Response(JSON.stringify(body), { status, headers })
}
