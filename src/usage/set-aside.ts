import type { Line } from './line.js'
import type { UsageLine } from './types.js'

/**
 * Lines the license server refused (one by one, or a batch it could not read), or that the protocol's rules say
 * it would refuse: kept with the reason for the app to inspect and resend once the cause is fixed, never dropped
 * and never resent on their own. Bounded: past `max`, a refused line is counted as dropped instead.
 */
export function createSetAside(
  max: number,
  parts: {
    /** The line will not reach the server as it is: its units stay counted locally. */
    readonly released: (line: Line) => void
    /** The list is full: the line is dropped, and counted. */
    readonly dropped: (line: Line) => void
  },
) {
  const lines: Line[] = []
  return {
    /** Sets `line` aside for `reason`. */
    add(line: Line, reason: string): void {
      line.reason = reason
      parts.released(line)
      if (lines.length >= max) {
        parts.dropped(line)
        return
      }
      lines.push(line)
    },
    /** A set-aside line back from the journal. */
    restore(line: Line): void {
      lines.push(line)
    },
    lines: (): readonly Line[] => lines,
    /** What the app sees of them (`meter.setAside()`): each line as sent, with the reason it was set aside. */
    view: (): UsageLine[] =>
      lines.map((line) => ({
        ...(JSON.parse(line.json) as UsageLine),
        ...(line.reason === undefined ? {} : { reason: line.reason }),
      })),
    /** Every line, taken out to be queued again with the same ids, reasons cleared. */
    takeAll(): Line[] {
      const taken = lines.splice(0)
      for (const line of taken) line.reason = undefined
      return taken
    },
  }
}

export type SetAside = ReturnType<typeof createSetAside>
