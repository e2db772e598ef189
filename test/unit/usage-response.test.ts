import { describe, expect, it } from 'vitest'
import { EntitlementError } from '../../src/core/errors.js'
import { failure } from '../../src/transport/requester.js'
import { classifyUsageAnswer, unanswered } from '../../src/transport/usage-response.js'

const NOW = Date.UTC(2026, 11, 3, 12)

/** What the server answered a batch with, as the requester reads it off the wire. */
function answer(status: number, body = '', headers: Record<string, string> = {}) {
  const response = new Response(null, { status, headers })
  return classifyUsageAnswer(
    {
      status,
      body,
      date: response.headers.get('date'),
      failure: response.ok ? undefined : failure(response, body, NOW),
    },
    NOW,
  )
}

describe('what a usage answer means for the batch', () => {
  it.each([
    [200, 'ok'],
    [201, 'ok'],
    [202, 'ok'],
    [400, 'rejected'],
    [422, 'rejected'],
    [409, 'rejected'],
    [413, 'too_large'],
    [401, 'refused'],
    [403, 'refused'],
    [404, 'refused'],
    [405, 'refused'],
    [501, 'refused'],
    [408, 'retry'],
    [429, 'retry'],
    [500, 'retry'],
    [502, 'retry'],
    [503, 'retry'],
    [504, 'retry'],
  ] as const)('%i is %s', (status, kind) => {
    expect(answer(status).kind).toBe(kind)
  })

  it('reads which lines were refused, from per-line answers or a list of rejected ones', () => {
    const perLine = answer(
      200,
      JSON.stringify({
        lines: [
          { id: 'a', status: 'accepted' },
          { id: 'b', status: 'refused', reason: 'metric too long' },
          { id: 'c', status: 'duplicate' },
        ],
      }),
    )
    expect(perLine).toEqual({ kind: 'ok', at: NOW, refused: [{ id: 'b', reason: 'metric too long' }] })
    const listed = answer(200, JSON.stringify({ rejected: [{ id: 'x' }, { nope: 1 }, null] }))
    expect(listed).toEqual({ kind: 'ok', at: NOW, refused: [{ id: 'x', reason: 'refused' }] })
  })

  it('takes the time of storing from the body, else the Date header, else now', () => {
    expect(answer(200, JSON.stringify({ at: 1234 }))).toMatchObject({ at: 1234 })
    const date = new Date(NOW - 5000).toUTCString()
    expect(answer(200, '', { date })).toMatchObject({ at: Math.floor((NOW - 5000) / 1000) * 1000 })
    expect(answer(200, 'not json')).toMatchObject({ at: NOW, refused: [] })
  })

  it('keeps the server’s Retry-After on a retry, at most a day', () => {
    expect(answer(429, '', { 'retry-after': '120' })).toMatchObject({ kind: 'retry', retryAfterMs: 120_000 })
    expect(answer(503, '', { 'retry-after': '99999999999' })).toMatchObject({ retryAfterMs: 86_400_000 })
    expect(answer(503)).toMatchObject({ kind: 'retry', retryAfterMs: undefined })
  })

  it('says why a batch was rejected, from the problem+json detail', () => {
    const rejected = answer(422, JSON.stringify({ title: 'Invalid', detail: 'lines[0].amount is negative' }))
    expect(rejected.kind).toBe('rejected')
    expect(rejected.kind === 'rejected' && rejected.error).toMatchObject({
      code: 'usage_rejected',
      message: 'the license server answered 422: lines[0].amount is negative',
    })
  })

  it('a batch with no answer at all goes again later, its error kept', () => {
    const cause = new TypeError('fetch failed')
    const retry = unanswered(cause)
    expect(retry).toMatchObject({
      kind: 'retry',
      retryAfterMs: undefined,
      error: { code: 'server_unavailable' },
    })
    const known = new EntitlementError('server_unavailable', 'no answer within 10000 ms')
    expect(unanswered(known)).toMatchObject({ error: known })
  })
})
