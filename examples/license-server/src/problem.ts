import type { Context } from 'hono'
import type { ContentfulStatusCode } from 'hono/utils/http-status'

/** An RFC 9457 problem: every error this server answers is one, as `application/problem+json`. */
export class Problem extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly title: string,
    readonly detail?: string,
    readonly extra: Record<string, unknown> = {},
    /** Sent as `Retry-After` (seconds): the condition is expected to clear. */
    readonly retryAfterSec?: number,
  ) {
    super(detail ?? title)
  }
}

/** Writes a problem response. `type` is a stable, documented slug of the title. */
export function problemResponse(c: Context, problem: Problem): Response {
  const slug = problem.title
    .toLowerCase()
    .replaceAll(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
  const body = {
    type: `urn:entitle:problem:${slug}`,
    title: problem.title,
    status: problem.status,
    ...(problem.detail ? { detail: problem.detail } : {}),
    ...problem.extra,
  }
  return c.body(JSON.stringify(body), problem.status, {
    'content-type': 'application/problem+json',
    ...(problem.retryAfterSec === undefined ? {} : { 'retry-after': String(problem.retryAfterSec) }),
  })
}
