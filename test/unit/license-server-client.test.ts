import { getEventListeners } from 'node:events'
import { describe, expect, it, vi } from 'vitest'
import { createEventStream } from '../../src/client/event-stream.js'
import { createLicenseServerClient, type LicenseServerClient } from '../../src/license-server.js'
import { defaultPlatform } from '../../src/platform.js'

describe('the license server client', () => {
  it('leaves no listener on the caller’s signal per request: a stream that reconnects all week does not leak', async () => {
    const platform = {
      ...defaultPlatform(),
      fetch: async () => new Response(': hi\n\n', { headers: { 'content-type': 'text/event-stream' } }),
    }
    const server = createLicenseServerClient({ url: 'https://license.example.com' }, platform)
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
      } as unknown as LicenseServerClient,
      backoff: { initialMs: 1, maxMs: 1 },
      onEntitlements: () => {},
      onRevocations: () => {},
      report: () => {},
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
