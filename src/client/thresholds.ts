import type { Entitlements } from '../core/entitlements.js'
import type { Platform } from '../platform/platform.js'
import { NEVER } from '../protocol/usage-rules.js'
import type { ThresholdEvent } from './options.js'
import type { SerializedStorage } from './serialized-storage.js'
import type { Entry } from './tokens/cache-entry.js'
import { counterKeyOf, windowFor } from './usage-window.js'

/** Where what fired is kept, so a restart does not fire it again. */
export const THRESHOLDS_KEY = 'entitle:thresholds'

/** At most this many (customer, feature, window or limit) crossings are remembered. */
export const MAX_REMEMBERED = 10_000

/**
 * Whether a use of `feature` could cross a usage alert: the token has some (one field read otherwise), and this
 * feature's cap has thresholds. Asked before the usage is worked out, which costs a clock read and lookups.
 */
export const alertsOn = (entry: Entry | undefined, feature: string): entry is Entry =>
  entry?.alerts === true && entry.entitlements.features.get(feature)?.cap?.thresholds !== undefined

/**
 * Usage alerts: a metered cap's `thresholds` (percentages of its limit) each fire one `threshold` event per customer,
 * feature and window, in ascending order when one step jumps several, never again while usage hovers at the line,
 * not again after a restart (the highest fired per window is stored), and again in the next window. A numeric
 * limit's thresholds fire the same way from the `usage` a check states, once per customer, feature and limit. With
 * a fleet store that can `claim`, one instance fires each for the whole fleet.
 */
export function createThresholds(parts: {
  readonly platform: Platform
  readonly storage: SerializedStorage
  /** The fleet's claim of a one-time key, where there is a fleet: whoever claims it first fires. */
  readonly claim: ((key: string, expiresAt: number | undefined) => Promise<boolean>) | undefined
  readonly emit: (event: ThresholdEvent) => void
  readonly report: (error: unknown) => void
  readonly background: (work: Promise<unknown>) => void
}) {
  const { platform, storage } = parts
  /** Counter key → the window it belongs to and the highest threshold fired in it. */
  const fired = new Map<string, { window: number; highest: number }>()

  function save(now: number): void {
    const kept: Record<string, { window: number; highest: number }> = {}
    // Bounded: past the bound the oldest remembered go, and could fire once more after a restart.
    for (const key of fired.keys()) {
      if (fired.size <= MAX_REMEMBERED) break
      fired.delete(key)
    }
    for (const [key, value] of fired) {
      if (value.window <= now) fired.delete(key)
      else kept[key] = value
    }
    storage.write(THRESHOLDS_KEY, JSON.stringify({ v: 1, fired: kept }))
  }

  /** `used` of `line.limit` under `key` (one window of one counter): fires the thresholds it crossed, once. */
  function cross(
    subject: string,
    feature: string,
    key: string,
    window: number,
    line: { readonly limit: number; readonly thresholds: readonly number[] },
    used: number,
    now: number,
  ): void {
    if (line.limit === 0) return
    const before = fired.get(key)?.highest ?? 0
    const crossed = line.thresholds.filter(
      (threshold) => threshold > before && used * 100 >= line.limit * threshold,
    )
    if (crossed.length === 0) return
    fired.set(key, { window, highest: crossed.at(-1)! })
    save(now)
    const events = crossed.map((threshold) => ({
      subject,
      feature,
      threshold,
      used,
      limit: line.limit,
      resetsAt: window === NEVER ? undefined : window,
    }))
    parts.background(announce(events, key, window).catch(parts.report))
  }

  async function announce(events: ThresholdEvent[], key: string, window: number): Promise<void> {
    for (const event of events) {
      const mine =
        parts.claim === undefined ||
        (await parts.claim(`${key}:${event.threshold}`, window === NEVER ? undefined : window))
      if (mine) parts.emit(event)
    }
  }

  return {
    /** Takes back what fired before a restart. */
    async restore(): Promise<void> {
      const text = await storage.read(THRESHOLDS_KEY)
      if (text === undefined) return
      try {
        const stored = (
          JSON.parse(text) as { fired?: Record<string, { window?: unknown; highest?: unknown }> }
        ).fired
        for (const [key, value] of Object.entries(stored ?? {})) {
          const { window, highest } = value ?? {}
          if (typeof window === 'number' && typeof highest === 'number' && !fired.has(key))
            fired.set(key, { window, highest })
        }
      } catch (error) {
        parts.report(error)
      }
    },

    /** `feature`'s usage in the current window is now `used`: fires what it crossed, once. */
    observe(entitlements: Entitlements, feature: string, used: number): void {
      const cap = entitlements.features.get(feature)?.cap
      const thresholds = cap?.thresholds
      if (cap === undefined || thresholds === undefined) return
      const now = platform.now()
      const window = windowFor(entitlements, feature, now)
      const key = counterKeyOf(entitlements.subject, feature, window)
      cross(entitlements.subject, feature, key, window, { limit: cap.limit, thresholds }, used, now)
    },

    /**
     * A check said `feature` (a numeric limit: seats, projects) has `usage` in use: fires what it crossed, once per
     * customer, feature and limit. A limit has no window; a new limit (an upgrade) is a new line to be told of.
     */
    observeLimit(entitlements: Entitlements, feature: string, usage: number): void {
      const found = entitlements.features.get(feature)
      if (found?.thresholds === undefined || found.limit === undefined) return
      const key = `${counterKeyOf(entitlements.subject, feature, NEVER)}:limit:${found.limit}`
      const limit = { limit: found.limit, thresholds: found.thresholds }
      cross(entitlements.subject, feature, key, NEVER, limit, usage, platform.now())
    },
  }
}

export type Thresholds = ReturnType<typeof createThresholds>
