import { EntitlementError } from '../core/errors.js'
import type { Platform } from '../platform/platform.js'
import type { LicenseServerClient } from './license-server-client.js'
import type { RetryState } from './retry.js'
import { createEventStreamParser } from './sse.js'

/** What the event stream works with. */
export interface EventStreamOptions {
  readonly platform: Platform
  readonly server: Pick<LicenseServerClient, 'openEvents' | 'fetchChanges'>
  /**
   * The reconnections' backoff, forgotten only after a connection stayed healthy for a while. Made by the caller:
   * the client loads this code on first use (`client/lazy-event-stream.ts`), and a chunk that imported the retry
   * code would move it into a chunk shared with the rest of the client, which even an app that only verifies loads.
   */
  readonly retry: RetryState
  readonly pollIntervalMs: number
  /** How long one connection is held; `Infinity` in a process whose connections outlive requests. */
  readonly maxConnectionMs: number
  readonly onEntitlements: (subject: string) => void
  readonly onRevocations: () => void
  readonly report: (error: unknown) => void
  readonly background: (work: Promise<unknown>) => void
}

/**
 * Reads one connection's body to its end, each piece of text to `parse`. An abort of `signal` (the client stopped,
 * or the connection's life ended) cancels it; the listener goes with it.
 */
async function readToEnd(
  body: ReadableStream<Uint8Array>,
  signal: AbortSignal,
  parse: (text: string) => void,
): Promise<void> {
  const decoder = new TextDecoder()
  const reader = body.getReader()
  const cancel = () => {
    try {
      void reader.cancel(signal.reason).catch(() => {})
    } catch {
      // A stream of a request that has ended (a Worker) may refuse even to be cancelled: it is gone anyway.
    }
  }
  if (signal.aborted) cancel()
  signal.addEventListener('abort', cancel, { once: true })
  try {
    for (;;) {
      const { done, value } = await reader.read().catch((cause: unknown) => {
        if (signal.aborted) throw cause
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
    signal.removeEventListener('abort', cancel)
  }
}

/**
 * The license server's event stream, kept open: `entitlements` events name a customer to refresh, `revocations`
 * events say the list changed. It reconnects with backoff and `Last-Event-ID`; the backoff is forgotten only after
 * a connection stayed healthy for a minute, so a stream that opens and closes at once does not reconnect every
 * second. While no stream is held (the server refused one, `429`, or it is down), it asks `GET v1/changes` every
 * `pollIntervalMs` from the same cursor, so no instance is left without changes.
 *
 * Each connection is started by a call, never awaited across another: in a runtime whose work ends with the request
 * that started it (a Worker), a loop awaiting a reconnect would be cut there without a word. There a connection is
 * held at most `maxConnectionMs` and counted as gone after it, cut or not; `catchUp(now)`, called at each check,
 * opens the next one in the current request, from the last event heard.
 */
export function createEventStream(options: EventStreamOptions) {
  const { platform, server, retry, maxConnectionMs } = options
  const controller = new AbortController()
  let lastEventId: string | undefined
  let connected = false
  let pollTimer: unknown
  let reconnectTimer: unknown
  /** The connection being made or held; an older one that ends late changes nothing. */
  let generation = 0
  /** Until when the current connection (or the wait before the next) counts as busy: after it, a check reconnects. */
  let busyUntil = Number.POSITIVE_INFINITY
  /** The current connection's own abort: ended at its life's end without stopping the client. */
  let current: AbortController | undefined
  /** Its listener on the client's stop. */
  let stopCurrent: (() => void) | undefined

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
    // Armed before asking: an answer the runtime never delivers (its request ended) must not end the polling.
    keepPolling()
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
  }

  function keepPolling(): void {
    if (connected || controller.signal.aborted || pollTimer !== undefined) return
    pollTimer = platform.setTimeout(() => options.background(poll()), options.pollIntervalMs)
  }

  function opened(mine: number, connection: AbortController): void {
    retry.recordSuccess(platform.now())
    connected = true
    platform.clearTimeout(pollTimer)
    pollTimer = undefined
    busyUntil = platform.now() + maxConnectionMs
    if (maxConnectionMs === Number.POSITIVE_INFINITY) return
    // Ended on time while its request lives; if the runtime cut it first, `busyUntil` tells the next check.
    platform.setTimeout(() => {
      if (mine !== generation) return
      connection.abort()
      connected = false
      busyUntil = platform.now()
    }, maxConnectionMs)
  }

  async function readOnce(mine: number, connection: AbortController): Promise<void> {
    const body = await server.openEvents(connection.signal, lastEventId)
    if (mine !== generation) {
      void body.cancel().catch(() => {})
      return
    }
    opened(mine, connection)
    const parse = createEventStreamParser(onEvent, (id) => {
      lastEventId = id
    })
    try {
      await readToEnd(body, connection.signal, parse)
    } finally {
      if (mine === generation) connected = false
    }
  }

  /** Opens a connection now, in the current request; whatever held one before is let go. */
  function connect(): void {
    if (controller.signal.aborted) return
    platform.clearTimeout(reconnectTimer)
    reconnectTimer = undefined
    // The one before, if the runtime cut it without a word, is let go with its listener.
    current?.abort()
    if (stopCurrent !== undefined) controller.signal.removeEventListener('abort', stopCurrent)
    const mine = ++generation
    const connection = new AbortController()
    current = connection
    const stop = () => connection.abort(controller.signal.reason)
    stopCurrent = stop
    controller.signal.addEventListener('abort', stop, { once: true })
    // A connection the runtime drops before it answers must not hold the next one off for ever.
    busyUntil = platform.now() + maxConnectionMs
    options.background(
      readOnce(mine, connection).then(
        () => ended(mine, connection, undefined),
        (error: unknown) => ended(mine, connection, error),
      ),
    )
    function ended(mine: number, connection: AbortController, error: unknown): void {
      controller.signal.removeEventListener('abort', stop)
      if (mine !== generation || controller.signal.aborted) return
      connected = false
      // The connection's own life ended it: the next check opens another, no failure to back off from.
      if (connection.signal.aborted) return
      if (error !== undefined) options.report(error)
      // No stream now: changes come by polling until one is held again.
      if (pollTimer === undefined) options.background(poll())
      // A stream that ended is a failure too: reconnecting at once after each end is the loop to avoid.
      const wait = retry.recordFailure(platform.now(), (error as EntitlementError | undefined)?.retryAfterMs)
      busyUntil = platform.now() + wait
      reconnectTimer = platform.setTimeout(connect, wait)
    }
  }

  return {
    start: () => connect(),
    /**
     * At a check: opens the next connection if the last one is over (its life ended, or the runtime cut it and the
     * wait before reconnecting is past). One comparison otherwise.
     */
    catchUp(now: number): void {
      if (now >= busyUntil && !controller.signal.aborted) connect()
    },
    stop(): void {
      controller.abort()
      platform.clearTimeout(pollTimer)
      platform.clearTimeout(reconnectTimer)
    },
  }
}
