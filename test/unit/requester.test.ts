import { describe, expect, it } from 'vitest'
import { EntitlementError } from '../../src/core/errors.js'
import { defaultPlatform } from '../../src/platform/platform.js'
import { readBoundedText } from '../../src/transport/bounded-body.js'
import { createRequester } from '../../src/transport/requester.js'

/** Timers that run only when the test says: the requester's timeout is on the platform's timers. */
function manualTimers() {
  const timers = new Map<number, () => void>()
  let next = 0
  return {
    setTimeout(fn: () => void, _ms: number) {
      timers.set(++next, fn)
      return next
    },
    clearTimeout(handle: unknown) {
      timers.delete(handle as number)
    },
    /** Runs every timer still set. */
    fire() {
      for (const [id, fn] of [...timers]) {
        timers.delete(id)
        fn()
      }
    },
    get pending() {
      return timers.size
    },
  }
}

const ENDPOINT = {
  url: 'https://license.example.com/base',
  apiKey: 'k',
  headers: undefined,
  timeoutMs: 5_000,
}

function requesterWith(fetch: typeof globalThis.fetch) {
  const timers = manualTimers()
  const request = createRequester(ENDPOINT, { ...defaultPlatform(), ...timers, fetch })
  return { request, timers }
}

async function rejection(promise: Promise<unknown>): Promise<EntitlementError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error).toBeInstanceOf(EntitlementError)
  return error as EntitlementError
}

const text = (response: Response) => response.text()

describe('one request to the license server', () => {
  it('sends below the base URL with the credential, reads the answer, and leaves no timer behind', async () => {
    const seen: { url: string; auth: string | null; method: string | undefined }[] = []
    const { request, timers } = requesterWith(async (input, init) => {
      seen.push({
        url: String(input),
        auth: new Headers(init?.headers).get('authorization'),
        method: init?.method,
      })
      return new Response('token')
    })
    expect(await request('v1/entitlements/acme', { headers: {} }, text)).toBe('token')
    expect(seen).toEqual([
      { url: 'https://license.example.com/base/v1/entitlements/acme', auth: 'Bearer k', method: 'GET' },
    ])
    expect(timers.pending).toBe(0)
  })

  it('times out a fetch that never settles and ignores its signal', async () => {
    let signal: AbortSignal | undefined
    const { request, timers } = requesterWith((_input, init) => {
      signal = init?.signal ?? undefined
      return new Promise<Response>(() => {})
    })
    const pending = request('v1/entitlements/acme', { headers: {} }, text)
    await Promise.resolve()
    timers.fire()
    const error = await rejection(pending)
    expect(error.code).toBe('server_unavailable')
    expect(error.message).toBe('no answer within 5000 ms')
    expect(signal?.aborted).toBe(true)
  })

  it('times out a body that stalls after its headers, and cancels it though a reader holds it', async () => {
    let cancelled = false
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('half a tok'))
      },
      cancel() {
        cancelled = true
      },
    })
    const { request, timers } = requesterWith(async () => new Response(body))
    // Read as the client reads a token: its reader holds the body locked, and the abort cancels through it.
    const pending = request('v1/entitlements/acme', { headers: {} }, (response) =>
      readBoundedText(response, 1 << 20, 'token_too_large'),
    )
    await new Promise((resolve) => setTimeout(resolve, 5))
    timers.fire()
    expect((await rejection(pending)).code).toBe('server_unavailable')
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(cancelled).toBe(true)
  })

  it('ends when the caller aborts mid-request, and takes its listener off the caller’s signal', async () => {
    const caller = new AbortController()
    let signal: AbortSignal | undefined
    const { request, timers } = requesterWith((_input, init) => {
      signal = init?.signal ?? undefined
      return new Promise<Response>(() => {})
    })
    const pending = request('v1/events', { headers: {} }, text, caller.signal)
    await Promise.resolve()
    caller.abort()
    expect((await rejection(pending)).code).toBe('server_unavailable')
    expect(signal?.aborted).toBe(true)
    expect(timers.pending).toBe(0)
  })

  it('sends nothing when the caller’s signal is already aborted', async () => {
    const caller = new AbortController()
    caller.abort()
    let sent = 0
    const { request, timers } = requesterWith(async () => {
      sent++
      return new Response('token')
    })
    expect((await rejection(request('v1/events', { headers: {} }, text, caller.signal))).code).toBe(
      'server_unavailable',
    )
    expect(sent).toBe(0)
    expect(timers.pending).toBe(0)
  })

  it('maps a network failure to server_unavailable, and passes an EntitlementError of the reader through', async () => {
    const down = requesterWith(async () => {
      throw new TypeError('fetch failed')
    })
    const error = await rejection(down.request('v1/revocations', { headers: {} }, text))
    expect(error.code).toBe('server_unavailable')
    expect((error.cause as Error).message).toBe('fetch failed')
    expect(down.timers.pending).toBe(0)

    const refusing = requesterWith(async () => new Response('x'))
    const own = new EntitlementError('token_too_large', 'too long')
    expect(
      await rejection(
        refusing.request('v1/entitlements/acme', { headers: {} }, async () => {
          throw own
        }),
      ),
    ).toBe(own)
  })

  it('answers once: a timer that fires after the answer changes nothing', async () => {
    const { request, timers } = requesterWith(async () => new Response('token'))
    const answer = request('v1/entitlements/acme', { headers: {} }, text)
    expect(await answer).toBe('token')
    timers.fire()
    expect(await answer).toBe('token')
  })
})

describe('a bounded body', () => {
  /** A body that arrives in the chunks given. */
  const streamed = (...chunks: Uint8Array[]) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks) controller.enqueue(chunk)
          controller.close()
        },
      }),
    )

  it('reads text whose characters are cut between chunks, and an empty body', async () => {
    const bytes = new TextEncoder().encode('entitlement: é, 漢, 🎫 ok')
    // Every cut, each of them inside some multi-byte character for one of the positions.
    for (let cut = 1; cut < bytes.length; cut++) {
      const text = await readBoundedText(
        streamed(bytes.slice(0, cut), bytes.slice(cut)),
        1024,
        'token_too_large',
      )
      expect(text).toBe('entitlement: é, 漢, 🎫 ok')
    }
    const three = [bytes.slice(0, 15), bytes.slice(15, 17), bytes.slice(17)]
    expect(await readBoundedText(streamed(...three), 1024, 'token_too_large')).toBe(
      'entitlement: é, 漢, 🎫 ok',
    )
    expect(await readBoundedText(streamed(), 1024, 'token_too_large')).toBe('')
    expect(await readBoundedText(new Response(null), 1024, 'token_too_large')).toBe('')
  })

  it('reads each body on its own: one that ends inside a character leaves nothing to the next', async () => {
    const ticket = new TextEncoder().encode('🎫')
    // Bodies read at once and in turn; the first of each pair is cut inside its last character.
    const cut = () => streamed(new TextEncoder().encode('a'), ticket.slice(0, 2))
    const [first, second] = await Promise.all([
      readBoundedText(cut(), 1024, 'token_too_large'),
      readBoundedText(streamed(ticket), 1024, 'token_too_large'),
    ])
    expect(first).toBe('a\uFFFD')
    expect(second).toBe('🎫')
    expect(await readBoundedText(cut(), 1024, 'token_too_large')).toBe('a\uFFFD')
    expect(await readBoundedText(streamed(new TextEncoder().encode('ok')), 1024, 'token_too_large')).toBe(
      'ok',
    )
  })

  it('refuses a body past its bound with the code given, counting bytes across chunks', async () => {
    const kilobyte = new Uint8Array(1024).fill(97)
    const refused = await readBoundedText(streamed(kilobyte, kilobyte), 2047, 'token_too_large').catch(
      (e) => e,
    )
    expect(refused).toBeInstanceOf(EntitlementError)
    expect(refused.code).toBe('token_too_large')
    expect(await readBoundedText(streamed(kilobyte, kilobyte), 2048, 'token_too_large')).toHaveLength(2048)
  })
})
