import type { EntitlementsClient, EntitlementsSnapshot } from '../client/options.js'
import type { Decision } from '../core/decision.js'

/**
 * What the React bindings read: one customer's snapshot, replaced only when an answer changed, so that
 * `useSyncExternalStore` re-renders on an upgrade or a downgrade and never on a clock tick.
 */
export interface EntitlementsStore {
  readonly client: EntitlementsClient
  readonly subject: string | undefined
  /** Calls `listener` after each change of the snapshot; returns a function that stops it. */
  subscribe(listener: () => void): () => void
  /** The snapshot now: the same object until something in it changes. */
  getSnapshot(): EntitlementsSnapshot
  /** The snapshot the server rendered from (hydration), else the first one taken. */
  getServerSnapshot(): EntitlementsSnapshot
  /** Takes a new snapshot now (after `record()`, say): listeners hear of it only if an answer changed. */
  refresh(): void
}

/** What makes two answers different for a UI: not `age`, which moves every millisecond. */
function sameDecision(a: Decision, b: Decision): boolean {
  return (
    a.allowed === b.allowed &&
    a.reason === b.reason &&
    a.plan === b.plan &&
    a.limit === b.limit &&
    a.used === b.used &&
    a.remaining === b.remaining &&
    a.overage === b.overage &&
    a.resetsAt === b.resetsAt &&
    a.expiresAt === b.expiresAt &&
    a.source === b.source &&
    a.error === b.error &&
    a.upgrade === b.upgrade &&
    a.credits?.available === b.credits?.available &&
    a.credits?.cost === b.credits?.cost
  )
}

/** Two balances read the same in a UI: what is available and held, and when the next grant ends. */
function sameCredits(a: EntitlementsSnapshot['credits'], b: EntitlementsSnapshot['credits']): boolean {
  const types = Object.keys(a ?? {})
  if (types.length !== Object.keys(b ?? {}).length) return false
  return types.every((type) => {
    const [x, y] = [a[type]!, b[type]]
    return (
      y !== undefined && x.available === y.available && x.held === y.held && x.nextExpiry === y.nextExpiry
    )
  })
}

function sameSnapshot(a: EntitlementsSnapshot, b: EntitlementsSnapshot): boolean {
  if (a.status !== b.status || a.plan !== b.plan || a.subject !== b.subject) return false
  if (!sameCredits(a.credits, b.credits)) return false
  const names = Object.keys(a.decisions)
  if (names.length !== Object.keys(b.decisions).length) return false
  return names.every((name) => {
    const other = b.decisions[name]
    return other !== undefined && sameDecision(a.decisions[name]!, other)
  })
}

/**
 * A store over `client` for one customer (`subject`, multi-tenant; none for the app's own token). It starts from
 * `initial` when the page was rendered on a server, so hydration matches, and moves to the client's own answers
 * once it has them. It listens to the client's `change` events while anyone subscribes, and loads the customer
 * when the client does not hold them yet.
 */
export function createEntitlementsStore(
  client: EntitlementsClient,
  subject?: string,
  initial?: EntitlementsSnapshot,
): EntitlementsStore {
  const listeners = new Set<() => void>()
  const first = client.snapshot(subject)
  // Before the client holds the customer, the server's snapshot (if any) stands: never a flash of `not_loaded`.
  let current = first.status === 'not_loaded' && initial !== undefined ? initial : first
  const server = initial ?? current
  let stopListening: (() => void) | undefined
  let loading = false

  function refresh(): void {
    const next = client.snapshot(subject)
    if (next.status === 'not_loaded') {
      load()
      return
    }
    if (sameSnapshot(current, next)) return
    current = next
    for (const listener of [...listeners]) listener()
  }

  function load(): void {
    if (loading) return
    loading = true
    void client
      .load(subject)
      .catch(() => undefined)
      .then(() => {
        loading = false
        const next = client.snapshot(subject)
        // Still nothing (the source is out of reach): the answer stays what it was; a later change retries.
        if (next.status !== 'not_loaded') refresh()
      })
  }

  return {
    client,
    subject,
    subscribe(listener) {
      listeners.add(listener)
      if (stopListening === undefined) {
        const mine = (event: { subject: string }) => {
          if (subject === undefined || event.subject === subject) refresh()
        }
        // A change of entitlements, or a floating seat coming or going, changes what components answer.
        const stops = [client.on('change', mine), client.on('lease', mine)]
        stopListening = () => {
          for (const stop of stops) stop()
        }
        refresh()
      }
      return () => {
        listeners.delete(listener)
        if (listeners.size === 0) {
          stopListening?.()
          stopListening = undefined
        }
      }
    },
    getSnapshot: () => current,
    getServerSnapshot: () => server,
    refresh,
  }
}
