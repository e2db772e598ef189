import type { EntitlementsClient } from '../client/index.js'

/** The part of `window` and `document` the page-hide hook listens on. */
export interface PageLifecycleTarget {
  /** Starts calling `listener` on events of `type`. */
  addEventListener(type: string, listener: () => void): void
  /** Stops calling `listener` on events of `type`. */
  removeEventListener(type: string, listener: () => void): void
}

/**
 * Sends queued usage when the page is hidden or unloaded (`visibilitychange` to hidden, `pagehide`): the last moment
 * a browser reliably runs code. The usage is journaled first, then sent with `fetch(…, { keepalive: true })` within
 * the browser's 64 KiB budget; what does not fit, or does not arrive, is sent by the next page load. Returns a
 * function that stops listening.
 *
 * @example
 * ```ts
 * import { createLocalStorage, flushOnPageHide } from 'entitle/browser'
 * const client = createEntitlements({ ...options, storage: createLocalStorage() })
 * flushOnPageHide(client)
 * ```
 */
export function flushOnPageHide(
  client: Pick<EntitlementsClient, 'flush'>,
  targets: {
    window?: PageLifecycleTarget
    document?: PageLifecycleTarget & { visibilityState?: string }
  } = {},
): () => void {
  const win = targets.window ?? (globalThis as { window?: PageLifecycleTarget }).window
  const doc =
    targets.document ??
    (globalThis as { document?: PageLifecycleTarget & { visibilityState?: string } }).document
  const flush = () => {
    // flush() never rejects; the catch is for a client replaced by something that does.
    client.flush({ keepalive: true }).catch(() => {})
  }
  const onVisibility = () => {
    if (doc?.visibilityState === 'hidden') flush()
  }
  win?.addEventListener('pagehide', flush)
  doc?.addEventListener('visibilitychange', onVisibility)
  return () => {
    win?.removeEventListener('pagehide', flush)
    doc?.removeEventListener('visibilitychange', onVisibility)
  }
}

/**
 * Gives back the floating seats this client holds when the page is unloaded (`pagehide`), with
 * `fetch(…, { keepalive: true })`, so another user need not wait for the lease to run out. Borrows are kept.
 * Returns a function that stops listening.
 *
 * @example
 * ```ts
 * import { releaseLeasesOnPageHide } from 'entitle/browser'
 * await client.lease('editor', { holder: userId })
 * releaseLeasesOnPageHide(client)
 * ```
 */
export function releaseLeasesOnPageHide(
  client: Pick<EntitlementsClient, 'releaseLeases'>,
  targets: { window?: PageLifecycleTarget } = {},
): () => void {
  const win = targets.window ?? (globalThis as { window?: PageLifecycleTarget }).window
  const release = () => {
    client.releaseLeases({ keepalive: true }).catch(() => {})
  }
  win?.addEventListener('pagehide', release)
  return () => win?.removeEventListener('pagehide', release)
}
