import type { EntitlementError } from '../../core/errors.js'
import { withGetters } from '../../platform/with-getters.js'
import type { MemoTable } from '../answers/memo-table.js'
import type { ClientConfig } from '../config.js'
import type { ChangeEvent, ErrorEvent } from '../options.js'
import type { SerializedStorage } from '../serialized-storage.js'
import type { TrustedClock } from '../trusted-clock.js'
import { type Entry, SINGLE_TENANT_KEY } from './cache-entry.js'
import { createInstaller } from './install.js'
import { createRenewalSchedule } from './renewal-schedule.js'
import { createStoredTokens } from './stored-tokens.js'
import { createSubjectIndex } from './subject-index.js'
import type { SourceOutcome, TokenSource } from './token-sources.js'
import { cannotKnow, type TokenVerifier } from './token-verifier.js'

/**
 * Request-driven: a renewal not answered after this long is asked again. A Worker's request can end with the fetch
 * still out, and then neither its answer nor its failure ever arrives to schedule the next one.
 */
const UNANSWERED_RENEWAL_MS = 60_000
/** What the token cache counts: renewals asked for, and fetches that failed. */
export interface TokenCacheStats {
  refreshes: number
  failures: number
}

/** What the token cache is made of: its settings, the verifier and the source, storage, trusted time, memo blocks. */
export interface TokenCacheParts {
  readonly config: ClientConfig
  readonly verifier: TokenVerifier
  readonly source: TokenSource
  readonly storage: SerializedStorage
  readonly clock: TrustedClock
  /** Gives each entry its block of memoized answers. */
  readonly memos: Pick<MemoTable, 'allocate'>
  /** Resolves once storage's revocations and trusted time are read. */
  readonly ready: Promise<unknown>
  readonly isRevoked: (tokenId: string) => boolean
  readonly emitChange: (event: ChangeEvent) => void
  readonly report: (during: ErrorEvent['during'], subject: string | undefined, error: unknown) => void
  readonly background: (work: Promise<unknown>) => void
}

/**
 * Each customer's token: loaded once (concurrent loads merged), restored from storage, fetched from the source,
 * installed, renewed before it expires. The parts: the subject index (which customers are in memory, and the
 * verdicts on those with no usable token), the token source (asked, never touching the cache), the renewal
 * schedule, the stored tokens. The rules it keeps:
 * - a token proven bad is an answer (a verdict), never an outage;
 * - a stored token is forgotten only when proven bad, never because the key set or the server is out of reach;
 * - a first load is not a change.
 */
export function createTokenCache(parts: TokenCacheParts) {
  const { config, verifier, source } = parts
  const { platform } = config
  const stats: TokenCacheStats = { refreshes: 0, failures: 0 }
  const schedule = createRenewalSchedule({
    platform,
    refreshAt: config.refreshAt,
    backoff: config.backoff,
    renews: source.renews,
    unansweredRetryMs: config.background === 'requests' ? UNANSWERED_RENEWAL_MS : undefined,
    renew: (entry) => parts.background(fetchFromSource(entry.subject, 'refresh')),
  })
  const subjects = createSubjectIndex({
    maxSubjects: config.maxSubjects,
    now: () => platform.now(),
    left: schedule.forget,
  })
  const loading = new Map<string, Promise<Entry | undefined>>()
  const subjectOf = (key: string) => (key === SINGLE_TENANT_KEY ? undefined : key)
  const stored = createStoredTokens(parts.storage, verifier, (during, key, error) =>
    parts.report(during, subjectOf(key), error),
  )
  const install = createInstaller({
    subjects,
    memos: parts.memos,
    clock: parts.clock,
    signsNow: source.signsNow,
    persistTokens: config.persistTokens,
    stored,
    schedule,
    emitChange: parts.emitChange,
  })
  let closed = false

  /** The source vouched for the token in memory: it is current, and answers say `cache` from now on. */
  function vouchedFor(entry: Entry, whenDueMs: number | undefined): Entry {
    entry.confirmedAt = platform.now()
    if (entry.origin === 'stored') {
      entry.origin = 'cache'
      // Answers said `stored`; from now on they say `cache`.
      entry.generation++
    }
    schedule.vouched(entry, whenDueMs)
    return entry
  }

  async function restore(key: string): Promise<Entry | undefined> {
    const restored = await stored.restore(key)
    if (restored === undefined) return undefined
    if ('judgedByClock' in restored) {
      subjects.judgedByClock(key)
      return undefined
    }
    const { entitlements } = restored.verified
    if (
      (key !== SINGLE_TENANT_KEY && entitlements.subject !== key) ||
      parts.isRevoked(entitlements.tokenId)
    ) {
      stored.forget(key)
      return undefined
    }
    const { etag, confirmedAt, token } = restored.stored
    return install({ key, verified: restored.verified, etag, confirmedAt, origin: 'stored', token })
  }

  /** A token from the source failed to verify, or is for someone else: that is an answer, not an outage. */
  function rejected(key: string, error: EntitlementError): Entry | undefined {
    const current = subjects.current(key)
    if (current !== undefined) {
      // The token in memory was good and still answers until it ends; the bad one is reported.
      schedule.retryLater(current)
      return current
    }
    subjects.judge(key, { error: error.code, fresh: true })
    return undefined
  }

  /** Acts on what the source answered. */
  function settle(key: string, current: Entry | undefined, outcome: SourceOutcome): Entry | undefined {
    switch (outcome.kind) {
      case 'token': {
        const { verified, token, etag } = outcome
        return install({ key, verified, etag, confirmedAt: platform.now(), origin: 'fresh', token })
      }
      case 'unchanged':
        return current === undefined ? undefined : vouchedFor(current, outcome.whenDueMs)
      case 'ended':
        subjects.remove(key)
        subjects.judge(key, { reason: outcome.reason, fresh: true })
        stored.forget(key)
        return undefined
    }
  }

  async function fetchFromSource(key: string, during: 'load' | 'refresh'): Promise<Entry | undefined> {
    const current = subjects.current(key)
    if (closed) return current
    if (during === 'refresh') stats.refreshes++
    try {
      // A clock that looks set back is corrected only by a token signed now: ask for one, not for a 304.
      const held = parts.clock.rolledBack(platform.now()) ? undefined : current
      return settle(key, current, await source.fetch(key, held))
    } catch (error) {
      stats.failures++
      parts.report(during, subjectOf(key), error)
      if (!cannotKnow(error)) return rejected(key, error as EntitlementError)
      const entry = subjects.current(key)
      if (entry !== undefined) schedule.retryLater(entry, (error as EntitlementError).retryAfterMs)
      return entry
    }
  }

  function load(key: string): Promise<Entry | undefined> {
    let pending = loading.get(key)
    if (pending === undefined) {
      pending = (async () => {
        await parts.ready
        // A token given as a string is the truth: a stored one could be older (the app shipped a new license).
        const restored = source.renews ? await restore(key) : undefined
        return subjects.current(key) ?? restored ?? (await fetchFromSource(key, 'load'))
      })().finally(() => loading.delete(key))
      loading.set(key, pending)
    }
    return pending
  }

  const cache = {
    /** Whether tokens are renewed from a source (a server or a token function), or never (a token string). */
    renews: source.renews,
    stats: stats as Readonly<TokenCacheStats>,
    get: subjects.get,
    peek: subjects.peek,
    has: subjects.has,
    verdict: subjects.verdict,
    hasVerdict: subjects.hasVerdict,
    /** Whether a token is stored for the customer that this machine's clock would not accept, lately. */
    judgedByClock: subjects.isJudgedByClock,
    /** A token past its stale grace that the source can no longer vouch for: it leaves memory. */
    forget: subjects.remove,
    load,
    refresh: fetchFromSource,
    entries: subjects.entries,
    values: subjects.values,
    /** Stops every renewal timer; loads in progress finish. */
    close(): Promise<unknown> {
      closed = true
      schedule.close()
      return Promise.allSettled([...loading.values()])
    },
  }
  return withGetters(cache, { size: () => subjects.size })
}

export type TokenCache = ReturnType<typeof createTokenCache>
