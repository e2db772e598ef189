import {
  createContext,
  createElement,
  type ReactNode,
  useContext,
  useMemo,
  useSyncExternalStore,
} from 'react'
import { emptyDecision } from '../client/answers/answer.js'
import type {
  CheckContext,
  CreditBalanceView,
  EntitlementsClient,
  EntitlementsSnapshot,
} from '../client/options.js'
import type { Decision } from '../core/decision.js'
import { createEntitlementsStore, type EntitlementsStore } from './store.js'

export type { EntitlementsStore } from './store.js'
export { createEntitlementsStore } from './store.js'

const StoreContext = createContext<EntitlementsStore | undefined>(undefined)

/** Props of {@link EntitlementsProvider}. */
export interface EntitlementsProviderProps {
  /** The app's client (`createEntitlements`), made once, outside of render. */
  client: EntitlementsClient
  /** Multi-tenant: the customer to answer for. */
  subject?: string
  /**
   * Server rendering: the snapshot the server rendered from (`client.snapshot(subject)` there, handed to the page
   * as JSON). The first render in the browser uses it, so hydration matches; the client's own answers replace it
   * once it has them.
   */
  snapshot?: EntitlementsSnapshot
  children?: ReactNode
}

/**
 * Makes a client's answers available to the components below it.
 *
 * @example
 * ```ts
 * createElement(EntitlementsProvider, { client: entitlements }, createElement(App))
 * ```
 */
export function EntitlementsProvider({ client, subject, snapshot, children }: EntitlementsProviderProps) {
  // One store per client and customer; the server snapshot is only read when the store is made.
  // biome-ignore lint/correctness/useExhaustiveDependencies: the snapshot seeds the store; it does not replace it.
  const store = useMemo(() => createEntitlementsStore(client, subject, snapshot), [client, subject])
  return createElement(StoreContext.Provider, { value: store }, children)
}

function useStore(): EntitlementsStore {
  const store = useContext(StoreContext)
  if (store === undefined)
    throw new TypeError('entitle/react hooks need an <EntitlementsProvider> above them')
  return store
}

/** What {@link useEntitlements} returns: the snapshot, and a way to take a new one. */
export interface EntitlementsView extends EntitlementsSnapshot {
  /** Takes a new snapshot now (after `record()` changed what a cap has left, say); re-renders if an answer changed. */
  refresh(): void
}

/**
 * Every feature's decision for the provider's customer, re-rendering when one changes (an upgrade pushed by the
 * server, a downgrade, the first load). `status` is `not_loaded` until the client holds the customer.
 */
export function useEntitlements(): EntitlementsView {
  const store = useStore()
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getServerSnapshot)
  return useMemo(() => ({ ...snapshot, refresh: store.refresh }), [snapshot, store])
}

/** Answers derived from one snapshot, kept with it, so that a hook returns the same object until it changes. */
const derived = new WeakMap<EntitlementsSnapshot, Map<string, Decision>>()

/** The answer for a feature the snapshot cannot give: none held yet (`not_loaded`), or not in the token. */
function answerWithout(feature: string, snapshot: EntitlementsSnapshot): Decision {
  const { status } = snapshot
  const reason = status === 'loaded' ? 'not_in_plan' : status
  return {
    ...emptyDecision(
      feature,
      false,
      reason,
      snapshot.subject,
      status === 'not_loaded' ? 'fallback' : 'cache',
    ),
    plan: snapshot.plan,
  }
}

function decisionFor(
  store: EntitlementsStore,
  snapshot: EntitlementsSnapshot,
  feature: string,
  context: Omit<CheckContext, 'subject'> | undefined,
): Decision {
  if (context === undefined) {
    const plain = snapshot.decisions[feature]
    if (plain !== undefined) return plain
  }
  const key = context === undefined ? feature : `${feature}\u0000${JSON.stringify(context)}`
  let answers = derived.get(snapshot)
  if (answers === undefined) {
    answers = new Map()
    derived.set(snapshot, answers)
  }
  let answer = answers.get(key)
  if (answer === undefined) {
    // A context the snapshot was not taken with: asked of the client, once per snapshot; before it holds the
    // customer (a server snapshot being hydrated), said from the snapshot.
    answer =
      snapshot.status === 'loaded' && store.client.entitlements(store.subject) !== undefined
        ? store.client.checkSync(feature, {
            ...context,
            ...(store.subject ? { subject: store.subject } : {}),
          })
        : answerWithout(feature, snapshot)
    answers.set(key, answer)
  }
  return answer
}

/**
 * A customer's balance of one credit type (`client.balance()`), re-rendered when it changes: a new snapshot from
 * the server (a top-up, a grant), or `refresh()` after this app spent. `undefined` while loading, or when the
 * customer holds no such credits.
 *
 * @example
 * ```tsx
 * function CreditsLeft() {
 *   const balance = useBalance('ai-credits')
 *   return <span>{balance === undefined ? '…' : `${balance.available} credits`}</span>
 * }
 * ```
 */
export function useBalance(type: string): CreditBalanceView | undefined {
  const store = useStore()
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getServerSnapshot)
  return snapshot.credits?.[type]
}

/**
 * One feature's decision, re-rendering when it changes. With no `context` it comes from the snapshot; with one
 * (roles, region…), it is asked of the client once per snapshot. Before the client holds the customer the
 * decision says `not_loaded`: show a placeholder, never a denial.
 */
export function useEntitlement(feature: string, context?: Omit<CheckContext, 'subject'>): Decision {
  const store = useStore()
  const snapshot = useSyncExternalStore(store.subscribe, store.getSnapshot, store.getServerSnapshot)
  return decisionFor(store, snapshot, feature, context)
}

/** Props of {@link Entitled}. */
export interface EntitledProps {
  feature: string
  context?: Omit<CheckContext, 'subject'>
  /** Shown when denied: a node, or a function of the decision (to show its upgrade hint). */
  fallback?: ReactNode | ((decision: Decision) => ReactNode)
  /** Shown while the client does not hold the customer yet (`not_loaded`). Default: nothing. */
  loading?: ReactNode
  children?: ReactNode
}

/**
 * Renders `children` when the feature is allowed, `fallback` when it is denied, and `loading` (not the fallback)
 * before the answer is known.
 */
export function Entitled({ feature, context, fallback = null, loading = null, children }: EntitledProps) {
  const decision = useEntitlement(feature, context)
  if (decision.reason === 'not_loaded') return loading
  if (decision.allowed) return children ?? null
  return typeof fallback === 'function' ? fallback(decision) : fallback
}
