import type { JWK } from 'jose'
import { diffEntitlements } from '../changes.js'
import type { DecisionReason } from '../decision.js'
import type { Entitlements } from '../entitlements.js'
import { EntitlementError, type EntitlementErrorCode } from '../errors.js'
import { FrozenMap, type KeyLayout } from '../frozen-map.js'
import type { LicenseServerClient } from '../license-server.js'
import { createRetryState, type RetryState } from '../retry.js'
import { createBoundedCache } from './bounded-cache.js'
import type { ChangeEvent, ClientConfig, ErrorEvent } from './options.js'
import { createRenewals, type Scheduled } from './renewals.js'
import type { SerializedStorage } from './serialized-storage.js'
import { createStoredTokens } from './stored-tokens.js'
import { cannotKnow, type TokenVerifier, type Verified } from './token-verifier.js'
import type { TrustedClock } from './trusted-clock.js'

/** The key of the app's own token in single-tenant use. */
export const OWN = ''

/** A block of memo slots big enough for every feature of a token: a power of two, at least 2. */
function memoBlock(entitlements: Entitlements): number {
  return 2 ** Math.max(1, Math.ceil(Math.log2(entitlements.features.size + 1)))
}

/** Where an entry's next answer says it came from. */
export type Origin = 'fresh' | 'stored' | 'cache'

/**
 * A customer's verified token in memory: the read model and what renewing it needs, not the token itself (a
 * multi-tenant service holding a million customers would keep a million copies of 1–2 KB it never reads again).
 */
export interface Entry extends Scheduled {
  /** Unique in this client: names the entry in the memo table. */
  readonly id: number
  /** Where the entry's block of memo slots starts: blocks are given out in turn, sized to the token's features. */
  readonly memoBase: number
  /** Whether an answer of this entry was ever memoized: if not, a record() has nothing to forget. */
  memoized: boolean
  readonly subject: string
  /** The app's own token (single-tenant), kept to notice when its source hands back a new one. */
  readonly token: string | undefined
  readonly entitlements: Entitlements
  /** `entitlements.expiresAt`, kept here so a memoized answer touches one object less. */
  readonly expiresAt: number
  readonly etag: string | undefined
  /** The remote key that verified it, stored with it so a restart can verify it while the key set is away. */
  readonly key: JWK | undefined
  /** When the source last confirmed this token (a fetch or a 304). */
  confirmedAt: number
  /**
   * `fresh`: loaded by the check that is waiting for it (said once); `stored`: read from storage and not yet
   * confirmed by the source (said until it is); `cache`: confirmed and in memory.
   */
  origin: Origin
  /** Made at the first failed refresh: most entries never need one. */
  retry: RetryState | undefined
  /** Changes when the entry's answers must be worked out again (its origin changed): memoized ones are void. */
  generation: number
  /** The feature layout of the token, shared by everyone on its plan: memoized answers are placed by it. */
  readonly layout: KeyLayout | undefined
  /** When a lookup last moved the entry up the LRU order, in lookups (see `get`). */
  touched: number
}

/**
 * What is known of a customer with no usable token, remembered for a minute: the server said there is no license
 * (`not_in_plan`) or it ended (`revoked`), or the token it handed out was proven bad (its error code).
 */
export type Verdict =
  | { readonly reason: Extract<DecisionReason, 'not_in_plan' | 'revoked'>; readonly error?: undefined }
  | { readonly reason?: undefined; readonly error: EntitlementErrorCode }

export interface TokenCacheHost {
  readonly config: ClientConfig
  readonly verifier: TokenVerifier
  readonly server: LicenseServerClient | undefined
  readonly tokenSource: string | (() => string | Promise<string>) | undefined
  readonly storage: SerializedStorage
  readonly clock: TrustedClock
  /** Resolves once storage's revocations and trusted time are read. */
  readonly ready: Promise<unknown>
  isRevoked(tokenId: string): boolean
  emitChange(event: ChangeEvent): void
  report(during: ErrorEvent['during'], subject: string | undefined, error: unknown): void
  background(work: Promise<unknown>): void
  readonly counters: { fetches: number; notModified: number; refreshes: number; failures: number }
}

/** Calls the app's own token source; its failures (a missing license file) get their own code. */
async function readTokenSource(source: () => string | Promise<string>): Promise<string> {
  try {
    return await source()
  } catch (cause) {
    throw new EntitlementError('token_unavailable', 'the token() source failed', { cause })
  }
}

/**
 * Each customer's token: loaded once (concurrent loads merged), restored from storage, fetched from the source,
 * renewed before it expires, retried with backoff when the source fails. The rules it keeps:
 * - a token proven bad is an answer (a {@link Verdict}), never an outage;
 * - a stored token is forgotten only when proven bad, never because the key set or the server is out of reach;
 * - a first load is not a change.
 */
export function createTokenCache(host: TokenCacheHost) {
  const { config, verifier, server, tokenSource, storage, clock } = host
  const { platform } = config
  const renews = server !== undefined || typeof tokenSource === 'function'

  // No TTL here: answers enforce exp + stale grace themselves, and `max` bounds memory, so a lookup reads no clock.
  const renewals = createRenewals<Entry>(platform, (entry) =>
    host.background(fetchFromSource(entry.subject, 'refresh')),
  )
  // The bounded cache keeps the order and evicts; `index` answers the lookups of the hot path. A lookup through
  // lru-cache pays for options and checks this cache never uses (stale entries, background fetches): measured at
  // 1 000 customers, record() took about 1.5x as long with `cache.peek` as with a bare `Map.get`.
  const index = new Map<string, Entry>()
  const cache = createBoundedCache<Entry>({
    max: config.maxSubjects,
    dispose: (entry, key) => {
      renewals.delete(entry)
      if (index.get(key) === entry) index.delete(key)
    },
  })
  const loading = new Map<string, Promise<Entry | undefined>>()
  /** Customers with no usable token, and why: remembered for a minute, bounded like the cache. */
  const verdicts = createBoundedCache<Verdict>({
    max: config.maxSubjects,
    ttlMs: 60_000,
    now: () => platform.now(),
  })
  const stored = createStoredTokens(storage, verifier, (during, key, error) =>
    host.report(during, key === OWN ? undefined : key, error),
  )
  let closed = false
  let installed = 0
  let memoBlocks = 0
  let lookups = 0
  const touchEvery = Math.max(1, Math.floor(config.maxSubjects / 4))

  /**
   * A lookup that keeps the LRU order roughly, cheaply: an entry is moved up at most once per `touchEvery`
   * lookups. Moving it on every lookup writes to four places in the cache's lists, each a likely CPU cache miss
   * when a hundred thousand customers are held; this way a hot customer pays it once in a while. An entry moved up
   * is among the newest `touchEvery` of the order, so one used at least once every `maxSubjects - touchEvery`
   * lookups is never evicted.
   */
  function get(key: string): Entry | undefined {
    const entry = index.get(key)
    if (entry !== undefined && ++lookups - entry.touched >= touchEvery) {
      entry.touched = lookups
      cache.get(key)
    }
    return entry
  }

  function install(
    key: string,
    verified: Verified,
    etag: string | undefined,
    confirmedAt: number,
    origin: Origin,
    token: string,
  ): Entry {
    const { entitlements } = verified
    const previous = cache.get(key)?.entitlements
    memoBlocks += memoBlock(entitlements)
    const entry: Entry = {
      id: ++installed,
      memoBase: memoBlocks,
      memoized: false,
      subject: key,
      token: key === OWN ? token : undefined,
      entitlements,
      expiresAt: entitlements.expiresAt,
      etag,
      key: verified.key,
      confirmedAt,
      origin,
      retry: undefined,
      generation: 0,
      layout: entitlements.features instanceof FrozenMap ? entitlements.features.layout : undefined,
      touched: lookups,
      due: 0,
      slot: -1,
    }
    cache.set(key, entry)
    index.set(key, entry)
    lookups++
    verdicts.delete(key)
    // A token the license server just issued vouches for the time: it re-anchors trusted time, so a clock that once
    // ran fast recovers online. A token the app supplies (a license file) or one read from storage is no such
    // evidence, and only raises it.
    if (origin === 'fresh' && server !== undefined) clock.anchorToServer(entitlements.issuedAt)
    else clock.observeIssuedAt(entitlements.issuedAt)
    if (origin === 'fresh' && config.persistTokens) {
      stored.save(key, { token, etag, confirmedAt, ...(verified.key ? { key: verified.key } : {}) })
    }
    if (previous !== undefined && previous.tokenId !== entitlements.tokenId) {
      const changes = diffEntitlements(previous, entitlements)
      if (changes.length > 0) host.emitChange({ subject: key, previous, current: entitlements, changes })
    }
    // A token restored from storage may be old: ask the source soon after start, not at 80% of its life.
    schedule(entry, origin === 'stored' ? 1000 + Math.floor(platform.random() * 4000) : undefined)
    return entry
  }

  /** Milliseconds until a token is due for renewal: `refreshAt` of its life, up to 10% earlier (jitter). */
  function untilRenewal(entry: Entry): number {
    const { issuedAt, expiresAt } = entry.entitlements
    const life = expiresAt - issuedAt
    return issuedAt + life * config.refreshAt - platform.random() * life * 0.1 - platform.now()
  }

  function schedule(entry: Entry, delay?: number): void {
    if (closed || !renews) return
    renewals.set(entry, platform.now() + (delay ?? Math.max(1000, untilRenewal(entry))))
  }

  /** Schedules the next attempt after a failure, with backoff (and the server's `Retry-After`). */
  function retryLater(entry: Entry, retryAfterMs?: number): void {
    entry.retry ??= createRetryState({ ...config.backoff, random: platform.random, minMs: 1000 })
    schedule(entry, entry.retry.recordFailure(platform.now(), retryAfterMs))
  }

  /**
   * The source vouched for the token in memory: it is current, and answers say `cache` from now on. It is renewed
   * on schedule; when it is already due and the source still hands it back, it is asked again later (`whenDueMs`
   * at least, with backoff), never every second.
   */
  function confirm(entry: Entry, whenDueMs?: number): void {
    const now = platform.now()
    entry.confirmedAt = now
    if (entry.origin === 'stored') {
      entry.origin = 'cache'
      // Answers said `stored`; from now on they say `cache`.
      entry.generation++
    }
    const wait = untilRenewal(entry)
    if (wait <= 1000) retryLater(entry, whenDueMs)
    else {
      entry.retry?.recordSuccess(now)
      schedule(entry, wait)
    }
  }

  async function restore(key: string): Promise<Entry | undefined> {
    const restored = await stored.restore(key)
    if (restored === undefined) return undefined
    const { entitlements } = restored.verified
    if ((key !== OWN && entitlements.subject !== key) || host.isRevoked(entitlements.tokenId)) {
      stored.forget(key)
      return undefined
    }
    const { etag, confirmedAt, token } = restored.stored
    return install(key, restored.verified, etag, confirmedAt, 'stored', token)
  }

  /** A token from the source failed to verify, or is for someone else: that is an answer, not an outage. */
  function rejected(key: string, error: EntitlementError): Entry | undefined {
    const current = cache.get(key)
    if (current !== undefined) {
      // The token in memory was good and still answers until it ends; the bad one is reported.
      retryLater(current)
      return current
    }
    verdicts.set(key, { error: error.code })
    return undefined
  }

  async function fromServer(
    key: string,
    current: Entry | undefined,
    source: LicenseServerClient,
  ): Promise<Entry | undefined> {
    host.counters.fetches++
    const response = await source.fetchToken(key, current?.etag)
    if (response.status === 'not_modified' && current) {
      host.counters.notModified++
      // Protocol v1 has servers re-issue past half-life; a server that answers 304 for a token due for renewal
      // is asked again with backoff.
      confirm(current)
      return current
    }
    if (response.status === 'not_found' || response.status === 'gone') {
      cache.delete(key)
      // A license that ended (410) answers `revoked`; a customer with none (404) answers `not_in_plan`.
      verdicts.set(key, { reason: response.status === 'gone' ? 'revoked' : 'not_in_plan' })
      stored.forget(key)
      return undefined
    }
    if (response.status !== 'ok')
      throw new EntitlementError('server_rejected', 'a 304 answered a request that sent no ETag')
    const verified = await verifier.verify(response.token)
    if (verified.entitlements.subject !== key) {
      throw new EntitlementError(
        'claims_invalid',
        `the server sent a token for ${verified.entitlements.subject}, not ${key}`,
      )
    }
    return install(key, verified, response.etag, platform.now(), 'fresh', response.token)
  }

  async function fromApp(
    key: string,
    current: Entry | undefined,
    source: string | (() => string | Promise<string>),
  ) {
    const token = typeof source === 'function' ? await readTokenSource(source) : source
    if (current?.token === token) {
      // A license file not replaced yet: read it again after a tenth of what is left of the token's life, so a
      // year-long license is not re-read every few minutes for months.
      confirm(current, (current.expiresAt - platform.now()) / 10)
      return current
    }
    return install(key, await verifier.verify(token), undefined, platform.now(), 'fresh', token)
  }

  async function fetchFromSource(key: string, during: 'load' | 'refresh'): Promise<Entry | undefined> {
    const current = cache.get(key)
    if (closed) return current
    if (during === 'refresh') host.counters.refreshes++
    try {
      return server !== undefined
        ? await fromServer(key, current, server)
        : await fromApp(key, current, tokenSource!)
    } catch (error) {
      host.counters.failures++
      host.report(during, key === OWN ? undefined : key, error)
      if (!cannotKnow(error)) return rejected(key, error as EntitlementError)
      const entry = cache.get(key)
      if (entry !== undefined) retryLater(entry, (error as { retryAfterMs?: number }).retryAfterMs)
      return entry
    }
  }

  function load(key: string): Promise<Entry | undefined> {
    let pending = loading.get(key)
    if (pending === undefined) {
      pending = (async () => {
        await host.ready
        // A token given as a string is the truth: a stored one could be older (the app shipped a new license).
        const restored = typeof tokenSource === 'string' ? undefined : await restore(key)
        return cache.get(key) ?? restored ?? (await fetchFromSource(key, 'load'))
      })().finally(() => loading.delete(key))
      loading.set(key, pending)
    }
    return pending
  }

  return {
    /** Whether tokens are renewed from a source (a server or a token function), or never (a token string). */
    renews,
    get,
    /** The entry, if any, without moving it up the LRU order. */
    peek: (key: string) => index.get(key),
    has: (key: string) => index.has(key),
    verdict: (key: string) => verdicts.get(key),
    hasVerdict: (key: string) => verdicts.has(key),
    /** A token past its stale grace that the source can no longer vouch for: it leaves memory. */
    forget: (key: string) => cache.delete(key),
    load,
    refresh: fetchFromSource,
    entries: () => cache.entries(),
    values: () => cache.values(),
    get size() {
      return cache.size
    },
    /** Stops every renewal timer; loads in progress finish. */
    close(): Promise<unknown> {
      closed = true
      renewals.close()
      return Promise.allSettled([...loading.values()])
    },
  }
}

export type TokenCache = ReturnType<typeof createTokenCache>
