import type { Platform } from '../platform/platform.js'
import type { LicenseServerClient } from './license-server-client.js'
import { type BackoffOptions, createRetryState } from './retry.js'
import { createEventStreamParser } from './sse.js'

/** A stream counts as healthy once it has stayed open this long: only then is its backoff forgotten. */
export const HEALTHY_STREAM_MS = 60_000

/**
 * The license server's event stream, kept open: `entitlements` events name a customer to refresh, `revocations`
 * events say the list changed. It reconnects with backoff and `Last-Event-ID`; the backoff is forgotten only after
 * a connection stayed healthy for a minute, so a stream that opens and closes at once does not reconnect every
 * second.
 */
export function createEventStream(options: {
  platform: Platform
  server: LicenseServerClient
  backoff: Required<BackoffOptions>
  onEntitlements: (subject: string) => void
  onRevocations: () => void
  report: (error: unknown) => void
}) {
  const { platform, server } = options
  const controller = new AbortController()
  const retry = createRetryState({
    ...options.backoff,
    random: platform.random,
    resetAfterHealthyMs: HEALTHY_STREAM_MS,
    minMs: 1000,
  })
  let lastEventId: string | undefined

  function onEvent(event: { event: string; data: string; id: string | undefined }): void {
    lastEventId = event.id ?? lastEventId
    if (event.event === 'revocations') options.onRevocations()
    if (event.event !== 'entitlements') return
    let subject: unknown
    try {
      subject = (JSON.parse(event.data) as { subject?: unknown }).subject
    } catch {
      return
    }
    if (typeof subject === 'string') options.onEntitlements(subject)
  }

  async function readOnce(): Promise<void> {
    const body = await server.openEvents(controller.signal, lastEventId)
    retry.recordSuccess(platform.now())
    const decoder = new TextDecoder()
    const parse = createEventStreamParser(onEvent)
    const reader = body.getReader()
    // Stopping the client ends this connection; the listener goes with it, so reconnects add none.
    const cancel = () => void reader.cancel(controller.signal.reason).catch(() => {})
    if (controller.signal.aborted) cancel()
    controller.signal.addEventListener('abort', cancel, { once: true })
    try {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        parse(decoder.decode(value, { stream: true }))
      }
    } finally {
      controller.signal.removeEventListener('abort', cancel)
    }
  }

  function pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const stop = () => {
        platform.clearTimeout(timer)
        resolve()
      }
      const timer = platform.setTimeout(() => {
        controller.signal.removeEventListener('abort', stop)
        resolve()
      }, ms)
      controller.signal.addEventListener('abort', stop, { once: true })
    })
  }

  async function run(): Promise<void> {
    while (!controller.signal.aborted) {
      try {
        await readOnce()
      } catch (error) {
        if (controller.signal.aborted) return
        options.report(error)
      }
      if (controller.signal.aborted) return
      // A stream that ended is a failure too: reconnecting at once after each end is the loop to avoid.
      await pause(retry.recordFailure(platform.now()))
    }
  }

  return {
    start: () => void run(),
    stop: () => controller.abort(),
  }
}
