import { EntitlementError } from '../core/errors.js'
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
 * second. While no stream is held (the server refused one, `429`, or it is down), it asks `GET v1/changes` every
 * `pollIntervalMs` from the same cursor, so no instance is left without changes.
 */
export function createEventStream(options: {
  platform: Platform
  server: LicenseServerClient
  backoff: Required<BackoffOptions>
  pollIntervalMs: number
  onEntitlements: (subject: string) => void
  onRevocations: () => void
  report: (error: unknown) => void
  background: (work: Promise<unknown>) => void
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
  let connected = false
  let pollTimer: unknown

  function hear(type: string, subject: unknown): void {
    if (type === 'revocations') options.onRevocations()
    else if (type === 'entitlements' && typeof subject === 'string') options.onEntitlements(subject)
  }

  function onEvent(event: { event: string; data: string; id: string | undefined }): void {
    lastEventId = event.id ?? lastEventId
    if (event.event !== 'entitlements') {
      hear(event.event, undefined)
      return
    }
    try {
      hear(event.event, (JSON.parse(event.data) as { subject?: unknown }).subject)
    } catch {
      // Not JSON: nothing to act on.
    }
  }

  /** Asks for the changes since the cursor (every page of them), then again in `pollIntervalMs`, while no stream. */
  async function poll(): Promise<void> {
    pollTimer = undefined
    if (connected || controller.signal.aborted) return
    try {
      for (;;) {
        const answer = await options.server.fetchChanges(lastEventId)
        if (connected || controller.signal.aborted) return
        for (const change of answer.changes) hear(change.event, change.subject)
        lastEventId = answer.last
        if (!answer.more) break
      }
    } catch (error) {
      options.report(error)
    }
    keepPolling()
  }

  function keepPolling(): void {
    if (connected || controller.signal.aborted || pollTimer !== undefined) return
    pollTimer = platform.setTimeout(() => options.background(poll()), options.pollIntervalMs)
  }

  async function readOnce(): Promise<void> {
    const body = await server.openEvents(controller.signal, lastEventId)
    retry.recordSuccess(platform.now())
    connected = true
    platform.clearTimeout(pollTimer)
    pollTimer = undefined
    const decoder = new TextDecoder()
    const parse = createEventStreamParser(onEvent)
    const reader = body.getReader()
    // Stopping the client ends this connection; the listener goes with it, so reconnects add none.
    const cancel = () => void reader.cancel(controller.signal.reason).catch(() => {})
    if (controller.signal.aborted) cancel()
    controller.signal.addEventListener('abort', cancel, { once: true })
    try {
      for (;;) {
        const { done, value } = await reader.read().catch((cause: unknown) => {
          if (controller.signal.aborted) throw cause
          // The runtime says `TypeError: terminated` or `aborted`: what happened, in the SDK's words.
          throw new EntitlementError(
            'server_unavailable',
            'the event stream was cut off (the license server went away or closed the connection); reconnecting',
            { cause },
          )
        })
        if (done) return
        parse(decoder.decode(value, { stream: true }))
      }
    } finally {
      connected = false
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
      let error: unknown
      try {
        await readOnce()
      } catch (failed) {
        if (controller.signal.aborted) return
        error = failed
        options.report(failed)
      }
      if (controller.signal.aborted) return
      // No stream now: changes come by polling until one is held again.
      if (pollTimer === undefined) options.background(poll())
      // A stream that ended is a failure too: reconnecting at once after each end is the loop to avoid.
      await pause(retry.recordFailure(platform.now(), (error as EntitlementError | undefined)?.retryAfterMs))
    }
  }

  return {
    start: () => void run(),
    stop(): void {
      controller.abort()
      platform.clearTimeout(pollTimer)
    },
  }
}
