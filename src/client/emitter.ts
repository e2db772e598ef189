import { EntitlementError } from '../core/errors.js'
import type { Platform } from '../platform/platform.js'
import type { ClientEvents, ErrorEvent } from './options.js'

/** The client's events, its error reporting, and its hand-off of background work to the platform. */
export function createEmitter(platform: Platform) {
  const listeners: { [K in keyof ClientEvents]: Set<(event: ClientEvents[K]) => void> } = {
    change: new Set(),
    error: new Set(),
    decision: new Set(),
    threshold: new Set(),
    lease: new Set(),
  }

  function emit<K extends keyof ClientEvents>(type: K, event: ClientEvents[K]): void {
    for (const listener of listeners[type]) {
      try {
        listener(event)
      } catch {
        // A listener's bug must not break checks or background refreshes.
      }
    }
  }

  return {
    emit,
    on<K extends keyof ClientEvents>(type: K, listener: (event: ClientEvents[K]) => void): () => void {
      const set = listeners[type] as Set<typeof listener>
      set.add(listener)
      return () => {
        set.delete(listener)
      }
    },
    /** Reports a background failure as an `error` event, as an `EntitlementError` whatever was thrown. */
    report(during: ErrorEvent['during'], subject: string | undefined, error: unknown): void {
      const wrapped =
        error instanceof EntitlementError
          ? error
          : during === 'storage'
            ? new EntitlementError('storage_failed', `the storage failed (${String(error)})`, {
                cause: error,
              })
            : new EntitlementError(
                'server_unavailable',
                `the license server could not be used (${String(error)})`,
                {
                  cause: error,
                },
              )
      emit('error', { subject, during, error: wrapped })
    },
    /** Starts background work, hands it to the platform's `waitUntil`, and never lets it reject unobserved. */
    background(work: Promise<unknown>): void {
      platform.waitUntil?.(
        work.then(
          () => undefined,
          () => undefined,
        ),
      )
    },
  }
}
