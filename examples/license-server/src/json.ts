import type { Context } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import * as z from 'zod'
import { DomainError } from './errors.js'
import { problemResponse } from './problem.js'

export const KIB = 1024

/** Refuses a body over `maxSize` bytes with a `413` problem, before reading it. */
export const limit = (maxSize: number) =>
  bodyLimit({
    maxSize,
    onError: () =>
      problemResponse(new DomainError('too_large', 'Body too large', `at most ${maxSize} bytes`)),
  })

/**
 * Reads a JSON body and validates it with zod: `415` for another content type, `400` when it is not JSON, `422`
 * with the failing paths when it is the wrong shape. `raw` is a body already read (a signed one).
 */
export async function readJson<S extends z.core.$ZodType>(
  c: Context,
  schema: S,
  raw?: string,
): Promise<z.output<S>> {
  const type = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]+\+json$/.test(type))
    throw new DomainError(
      'unsupported_media_type',
      'Unsupported media type',
      'send Content-Type: application/json',
    )
  const text = raw ?? (await c.req.text())
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    throw new DomainError('malformed', 'Malformed JSON', 'the request body is not JSON')
  }
  const parsed = z.safeParse(schema, value)
  if (!parsed.success) {
    const errors = parsed.error.issues
      .slice(0, 20)
      .map((issue) => ({ path: issue.path.join('.'), message: issue.message }))
    throw new DomainError(
      'invalid',
      'Invalid request',
      `${parsed.error.issues.length} field(s) are invalid`,
      { errors },
    )
  }
  return parsed.data
}

/** A path parameter that must be an id of the protocol's alphabet; anything else is simply not found. */
export function idParam(c: Context, name: string, pattern: RegExp): string {
  const value = c.req.param(name)
  if (value === undefined || !pattern.test(value))
    throw new DomainError('not_found', 'Not found', `no such ${name}`)
  return value
}
