import { USAGE_LIMITS } from '../protocol/usage-rules.js'
import type { Line } from './line.js'
import type { Counter } from './local-usage.js'

/**
 * The most a line may carry (the protocol's): past it, a new line starts. Read in a call marked pure, as in
 * `validate.ts`: an app that never meters keeps none of the usage rules.
 */
export const MAX_LINE_AMOUNT = /*@__PURE__*/ (() => USAGE_LIMITS.amount)()

/*
 * A counter's open plain line (no dimensions) keeps its running sums in the counter: its amount and its end, in
 * `lineAmount` and `lineEnd`. A record already reads and writes the counter (its window, its pending units); summing
 * into the line as well cost a second object a record, a likely CPU cache miss among thousands of lines (measured:
 * 6.4x a nested `Map` against 4.5x, docs/performance.md). The line's own `amount` and `end` are current only once
 * brought up to date: `letGo` does it when the line stops taking records (sealed, replaced, its window over), and
 * `bringUpToDate` when the journal writes it down while it is still open.
 *
 * The invariant: `counter.line` is set only while that line is open, and then `line.holder` is that counter.
 */

/**
 * Adds a record to the counter's open plain line, unless it has none or the sum would pass the protocol's amount
 * (then a new line starts). Module-level and small, so the hot path inlines it.
 */
export function addToOpenLine(counter: Counter, amount: number, now: number): boolean {
  if (counter.line === undefined || counter.lineAmount + amount > MAX_LINE_AMOUNT) return false
  counter.lineAmount += amount
  // A clock set back keeps start <= end: the line covers every record in it. Only then is the line itself read.
  if (now > counter.lineEnd) counter.lineEnd = now
  else if (now < counter.lineEnd && now < counter.line.start) counter.line.start = now
  return true
}

/** Makes `line`, just opened with its first record, the counter's open plain line, letting go of any before it. */
export function holdOpenLine(counter: Counter, line: Line): void {
  letGo(counter)
  counter.line = line
  counter.lineAmount = line.amount
  counter.lineEnd = line.end
  line.holder = counter
}

/** Copies the sums the counter keeps for its open line into the line: its `amount` and `end` are current. */
export function bringUpToDate(line: Line): void {
  const holder = line.holder
  if (holder === undefined) return
  line.amount = holder.lineAmount
  line.end = holder.lineEnd
}

/** The counter's open line, if any, takes no more records through it: its sums go into the line first. */
export function letGo(counter: Counter): void {
  const line = counter.line
  if (line === undefined) return
  bringUpToDate(line)
  line.holder = undefined
  counter.line = undefined
}
