import type { Platform } from '../platform/platform.js'
import { withGetters } from '../platform/with-getters.js'

/** How often, at most, a rising mark is written down after the first write of a process. */
const SAVE_EVERY_MS = 5000

/**
 * The high-water mark of time this client can vouch for, kept so that setting the clock back cannot revive an
 * expired license. See "Clock rollback" in `docs/client.md` for the trade-off it makes.
 *
 * - Within a process the mark follows the wall clock only as fast as the monotonic clock moves (plus the
 *   tolerance): a wall clock that jumps ahead once, then is set right, never leaves a mark in the future.
 * - A token freshly issued by the license server re-anchors it to the server's signed time (`iat`), so a mark that
 *   an earlier run left too high (a clock fast at start-up) comes down as soon as the app is online.
 * - The first mark a process vouches for, at its first check, is written at once, whatever was written before it
 *   (a token's `iat` at install may have been): a process killed a second after its first check still leaves the
 *   time of that check behind. After that it is written at most every five seconds while it rises, so a crash
 *   loses seconds of it, not a minute.
 */
export interface TrustedClock {
  /** True when `now` is behind the mark by more than the tolerance. Moves the mark forward otherwise. */
  rolledBack(now: number): boolean
  /** A token's `iat` the client accepted: time cannot be earlier than that. */
  observeIssuedAt(issuedAt: number): void
  /** The server signed a token at `issuedAt`: trust it over this machine's clock, in both directions. */
  anchorToServer(issuedAt: number): void
  /** Takes the mark an earlier run saved. */
  restore(saved: number): void
  /** Writes the mark now if it changed (at `close()`). */
  save(): void
  /** Stops the pending write timer. */
  stop(): void
  readonly mark: number
}

export function createTrustedClock(
  platform: Platform,
  toleranceMs: number,
  write: (mark: number) => void,
): TrustedClock {
  const monotonic = platform.monotonic ?? (() => performance.now())
  let mark = 0
  let saved = 0
  /** Wall time and monotonic time at the moment the mark was last anchored in this process. */
  let anchorWall: number | undefined
  let anchorMono = 0
  let saveTimer: unknown
  let everSaved = false
  /** Whether a check has raised the mark yet in this process: the first such rise is written at once. */
  let vouched = false
  let lastLook = Number.NaN

  function save(): void {
    platform.clearTimeout(saveTimer)
    saveTimer = undefined
    if (mark === saved) return
    saved = mark
    everSaved = true
    write(mark)
  }

  function changed(): void {
    if (saveTimer !== undefined) return
    if (!everSaved) save()
    else saveTimer = platform.setTimeout(save, SAVE_EVERY_MS)
  }

  function anchor(wall: number): void {
    anchorWall = wall
    anchorMono = monotonic()
  }

  const clock: Omit<TrustedClock, 'mark'> = {
    rolledBack(now) {
      // The hot path: within the same millisecond as the last look, nothing can have moved.
      if (now === lastLook) return now + toleranceMs < mark
      lastLook = now
      // The first look at the wall clock in a process is the one it has to take on trust.
      if (anchorWall === undefined) anchor(now)
      if (now + toleranceMs < mark) return true
      if (now <= mark) return false
      // The wall clock may only run ahead of the mark as fast as real time passes.
      const reachable = (anchorWall as number) + (monotonic() - anchorMono) + toleranceMs
      const next = Math.min(reachable, now)
      if (next > mark) {
        mark = next
        if (vouched) changed()
        else {
          vouched = true
          save()
        }
      }
      return false
    },
    observeIssuedAt(issuedAt) {
      if (issuedAt > mark) {
        mark = issuedAt
        changed()
      }
    },
    anchorToServer(issuedAt) {
      const next = Math.max(issuedAt, Math.min(mark, platform.now()))
      anchor(next)
      if (next !== mark) {
        mark = next
        changed()
      }
    },
    restore(value) {
      if (Number.isFinite(value) && value > mark) mark = saved = value
    },
    save,
    stop() {
      platform.clearTimeout(saveTimer)
      saveTimer = undefined
    },
  }
  return withGetters(clock, { mark: () => mark })
}
