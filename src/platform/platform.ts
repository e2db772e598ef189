/**
 * Everything the client needs from its environment, injected instead of sniffed, so tests freeze time and remove
 * jitter without patching globals, and each runtime brings its own.
 */
export interface Platform {
  /** Epoch milliseconds. */
  now(): number
  /**
   * Milliseconds on a clock that only moves forward at a steady rate (`performance.now()`), whatever the wall clock
   * does. Trusted time advances by it, so a wall clock that jumps ahead once cannot lock a customer out later.
   * Optional: the default is `performance.now()`.
   */
  monotonic?(): number
  /** A number in [0, 1): jitter for refreshes and backoff. */
  random(): number
  /** Runs `fn` after `ms`. The timer must not keep a process alive (Node: `unref()`). */
  setTimeout(fn: () => void, ms: number): unknown
  /** Cancels a timer made by `setTimeout`. */
  clearTimeout(handle: unknown): void
  /** The `fetch` used to reach the license server. */
  fetch: typeof fetch
  /**
   * The `fetch` for the event stream, a connection that stays open while the client runs. It must not keep a
   * process alive. Optional: in Node, `node:http` with its socket `unref()`'d; elsewhere, and whenever `fetch` is
   * given without it, `fetch`.
   */
  fetchInBackground?: typeof fetch
  /**
   * Receives every promise of background work (refreshes, revocation polls). Serverless runtimes pass their
   * `waitUntil` here so that work is not cut off when a request ends; tests use it to wait for the client to be
   * idle. Optional.
   */
  waitUntil?: (promise: Promise<unknown>) => void
}

/** The platform of the running JavaScript environment. Timers are `unref`'d where the runtime allows it. */
export function defaultPlatform(): Platform {
  return {
    now: Date.now,
    monotonic: () => performance.now(),
    random: Math.random,
    setTimeout(fn, ms) {
      const handle = globalThis.setTimeout(fn, ms) as unknown as { unref?: () => void }
      handle.unref?.()
      return handle
    },
    clearTimeout: (handle) =>
      globalThis.clearTimeout(handle as Parameters<typeof globalThis.clearTimeout>[0]),
    fetch: (input, init) => globalThis.fetch(input, init),
  }
}
