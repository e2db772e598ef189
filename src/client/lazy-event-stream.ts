import type { EventStreamOptions } from '../transport/event-stream.js'
import { createRetryState } from '../transport/retry.js'
import type { Backoff } from './config.js'
import { onFirstUse } from './on-first-use.js'

/** A stream counts as healthy once it has stayed open this long: only then is its backoff forgotten. */
const HEALTHY_STREAM_MS = 60_000

/**
 * The event stream, made when the client starts it (see `onFirstUse`): its code (the stream and its parser) is a
 * chunk of the browser build that a page downloads while its first check goes on, not before it. A chunk that
 * cannot be fetched (the page went offline) is reported (`events`) and fetched again `pollIntervalMs` later, as a
 * stream that cannot connect polls again then.
 */
export function createLazyEventStream(
  options: Omit<EventStreamOptions, 'retry'> & { readonly backoff: Backoff },
  /** Where the stream's code comes from: its chunk (a test gives one that fails, as a page gone offline does). */
  code: () => Promise<typeof import('../transport/event-stream.js')> = () =>
    import('../transport/event-stream.js'),
) {
  const { platform } = options
  const stream = onFirstUse('event stream', () =>
    code().then((module) =>
      module.createEventStream({
        ...options,
        retry: createRetryState({
          ...options.backoff,
          random: platform.random,
          resetAfterHealthyMs: HEALTHY_STREAM_MS,
          minMs: 1000,
        }),
      }),
    ),
  )
  let stopped = false
  let retryTimer: unknown

  function start(): void {
    retryTimer = undefined
    options.background(
      stream.load().then(
        (made) => {
          if (!stopped) made.start()
        },
        (error: unknown) => {
          if (stopped) return
          options.report(error)
          retryTimer = platform.setTimeout(start, options.pollIntervalMs)
        },
      ),
    )
  }

  return {
    start,
    /** At a check: the stream's `catchUp`, once it is made (until then its first connection is on its way). */
    catchUp(now: number): void {
      stream.current?.catchUp(now)
    },
    stop(): void {
      stopped = true
      platform.clearTimeout(retryTimer)
      stream.current?.stop()
    },
  }
}
