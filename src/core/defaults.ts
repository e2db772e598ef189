/**
 * Every default of the package, in one table: the docs quote these, the option validators fill them in, and no
 * module below the option resolution writes a `??` of its own. Two backoffs differ on purpose: a token refresh
 * may wait five minutes between attempts (the token in memory answers meanwhile), a usage batch at most one (it is
 * held in memory and journaled until it goes).
 */
export const DEFAULTS = {
  verify: {
    algorithms: ['EdDSA', 'Ed25519', 'ES256'],
    clockToleranceSec: 60,
    maxTokenLength: 16_384,
  },
  jwks: { cooldownMs: 30_000, cacheMaxAgeMs: 600_000, timeoutMs: 5_000 },
  /** `createEntitlements()`'s own options, each section below one of its option objects. */
  client: {
    maxSubjects: 10_000,
    refreshAt: 0.8,
    staleGraceMs: 3_600_000,
    failurePolicy: 'closed',
    decisionSummaryIntervalMs: 60_000,
    backoff: { initialMs: 1_000, maxMs: 300_000 },
    clockToleranceSec: 60,
    background: 'timers' as 'timers' | 'requests',
  },
  server: { timeoutMs: 10_000, events: false, revocationIntervalMs: 300_000, pollIntervalMs: 30_000 },
  revocations: { timeoutMs: 10_000, intervalMs: 300_000 },
  usage: {
    timeoutMs: 10_000,
    mode: 'aggregate',
    flushIntervalMs: 5_000,
    maxBatchLines: 1_000,
    maxBatchBytes: 262_144,
    maxInFlight: 1,
    maxQueuedLines: 10_000,
    maxSetAsideLines: 1_000,
    persistIntervalMs: 1_000,
    backoff: { initialMs: 1_000, maxMs: 60_000 },
  },
  fleet: { onStoreError: 'closed', instances: 1, viewMaxAgeMs: 30_000 },
  /** `close()`: how long to keep sending queued usage before the rest is persisted. */
  close: { deadlineMs: 5_000 },
  redis: { prefix: 'entitle:usage:', timeoutMs: 250 },
} as const
