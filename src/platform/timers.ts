import type { Platform } from './platform.js'

/** The longest delay `setTimeout` takes: past 2^31-1 ms, Node and browsers fire at once instead. */
export const MAX_TIMER_MS = 2_147_483_647

/** A timer longer than one `setTimeout` can hold: re-armed in steps until it is due. */
class LongTimer {
  handle: unknown
}

/**
 * The platform with a `setTimeout` that takes any delay. A year-long license schedules its renewal 292 days out;
 * handed straight to `setTimeout`, that fires after 1 ms and becomes a busy loop. Longer delays are re-armed in
 * steps of at most {@link MAX_TIMER_MS}, measured against the platform's clock; a negative or `NaN` delay is 0.
 */
export function withLongTimers(platform: Platform): Platform {
  const { setTimeout: arm, clearTimeout: disarm } = platform
  return {
    ...platform,
    setTimeout(fn, ms) {
      // biome-ignore lint/complexity/useMathMinMax: Math.max(NaN, 0) is NaN; a NaN delay must become 0.
      const wait = ms > 0 ? ms : 0
      if (wait <= MAX_TIMER_MS) return arm(fn, wait)
      const timer = new LongTimer()
      const due = platform.now() + wait
      const step = () => {
        const left = due - platform.now()
        timer.handle = left > MAX_TIMER_MS ? arm(step, MAX_TIMER_MS) : arm(fn, Math.max(0, left))
      }
      step()
      return timer
    },
    clearTimeout(handle) {
      disarm(handle instanceof LongTimer ? handle.handle : handle)
    },
  }
}
