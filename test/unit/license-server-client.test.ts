import { getEventListeners } from 'node:events'
import { describe, expect, it, vi } from 'vitest'
import { defaultPlatform } from '../../src/platform/platform.js'
import { createEventStream } from '../../src/transport/event-stream.js'
import {
  createLicenseServerClient,
  type LicenseServerClient,
} from '../../src/transport/license-server-client.js'
import { createRetryState } from '../../src/transport/retry.js'

describe('the license server client', () => {
  it('leaves no listener on the caller’s signal per request: a stream that reconnects all week does not leak', async () => {
    const platform = {
      ...defaultPlatform(),
      fetch: async () => new Response(': hi\n\n', { headers: { 'content-type': 'text/event-stream' } }),
    }
    const server = createLicenseServerClient(
      { url: 'https://license.example.com', apiKey: undefined, headers: undefined, timeoutMs: 10_000 },
      platform,
    )
    const stream = new AbortController()
    for (let i = 0; i < 50; i++) {
      const body = await server.openEvents(stream.signal, undefined)
      await body.cancel()
    }
    // One reconnect a minute (a proxy that closes idle streams) would otherwise add 10 000 listeners a week,
    // and Node warns of a leak past ten.
    expect(getEventListeners(stream.signal, 'abort').length).toBeLessThanOrEqual(1)
  })
})

describe('answers too long to be what they claim', () => {
  /** A body of `chunks` pieces of 64 KiB, counting how many were pulled. */
  function endless(chunks: number) {
    const pulled = { count: 0, cancelled: false }
    const piece = new TextEncoder().encode('x'.repeat(65_536))
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled.count++ >= chunks) controller.close()
        else controller.enqueue(piece)
      },
      cancel() {
        pulled.cancelled = true
      },
    })
    return { body, pulled }
  }
  const serverAnswering = (respond: () => Response) =>
    createLicenseServerClient(
      { url: 'https://license.example.com', apiKey: undefined, headers: undefined, timeoutMs: 10_000 },
      { ...defaultPlatform(), fetch: async () => respond() },
    )

  it('refuses a token answer past 1 MB without reading the rest (a URL that serves a file)', async () => {
    const { body, pulled } = endless(100_000)
    const server = serverAnswering(() => new Response(body))
    await expect(server.fetchToken('acme', undefined)).rejects.toMatchObject({ code: 'token_too_large' })
    expect(pulled.cancelled).toBe(true)
    expect(pulled.count).toBeLessThan(20)
  })

  it('refuses a revocation list past 16 MB, and reads ordinary answers whole', async () => {
    const { body, pulled } = endless(300)
    const listing = serverAnswering(() => new Response(body)).fetchRevocations(undefined)
    await expect(listing).rejects.toMatchObject({ code: 'server_rejected' })
    expect(pulled.count).toBeLessThanOrEqual(260)
    const revoked = Array.from({ length: 20_000 }, (_, i) => `token-${i}`)
    const listed = await serverAnswering(() => Response.json({ revoked })).fetchRevocations(undefined)
    expect(listed.revoked).toEqual(revoked)
    const token = await serverAnswering(() => new Response(' a.b.c \n')).fetchToken('acme', undefined)
    expect(token).toMatchObject({ status: 'ok', token: 'a.b.c' })
  })
})

describe('the event stream', () => {
  it('ends an open connection when stopped, and takes its listener with it on every reconnect', async () => {
    let cancelled = 0
    let opened = 0
    const signals: AbortSignal[] = []
    const stream = createEventStream({
      platform: { ...defaultPlatform(), setTimeout: (fn: () => void) => setTimeout(fn, 0) },
      server: {
        openEvents: async (signal: AbortSignal) => {
          signals.push(signal)
          opened++
          // The first ten connections end at once (a proxy closing them); the eleventh stays open.
          return new ReadableStream<Uint8Array>({
            start(controller) {
              if (opened <= 10) controller.close()
            },
            cancel() {
              cancelled++
            },
          })
        },
        fetchChanges: async () => ({ changes: [], last: '0', more: false }),
      } as unknown as LicenseServerClient,
      retry: createRetryState({
        initialMs: 1,
        maxMs: 1,
        random: Math.random,
        resetAfterHealthyMs: 60_000,
        minMs: 1000,
      }),
      pollIntervalMs: 60_000,
      maxConnectionMs: Number.POSITIVE_INFINITY,
      onEntitlements: () => {},
      onRevocations: () => {},
      report: () => {},
      background: () => {},
    })
    stream.start()
    await vi.waitFor(() => expect(opened).toBe(11))
    // One listener at most, however many connections came before: the open one's.
    expect(getEventListeners(signals[10]!, 'abort').length).toBeLessThanOrEqual(1)
    stream.stop()
    await vi.waitFor(() => expect(cancelled).toBe(1))
    expect(getEventListeners(signals[10]!, 'abort').length).toBe(0)
  })
})
