import type { Batch, BatchQueue } from './batch-queue.js'
import { createLine, type Line, sealLine } from './line.js'
import type { ConfirmedUnits, LocalUsage } from './local-usage.js'
import type { SetAside } from './set-aside.js'

/** One line as the journal keeps it: the line, the window it counts in, and the batch it was last sent in. */
export interface JournalLine {
  id: string
  key: string
  metric: string
  amount: number
  start: number
  end: number
  window: number
  dimensions?: Record<string, string>
  properties?: Record<string, unknown>
  resource?: string
  batch?: string
  reason?: string
}

/** What the journal holds: every unconfirmed line, the set-aside lines, and confirmed units no token counts. */
export interface Journal {
  readonly lines: readonly JournalLine[]
  readonly setAside: readonly JournalLine[]
  readonly confirmed: readonly ConfirmedUnits[]
  /** Units `consume()` had granted per cap counter when this was written (see the cap reservations). */
  readonly granted: Readonly<Record<string, number>>
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0

/** The smallest validity check a journal line needs before it is trusted with money. */
function isJournalLine(value: unknown): value is JournalLine {
  const line = value as JournalLine
  return (
    typeof line === 'object' &&
    line !== null &&
    typeof line.id === 'string' &&
    typeof line.key === 'string' &&
    typeof line.metric === 'string' &&
    isCount(line.amount) &&
    typeof line.start === 'number' &&
    typeof line.end === 'number' &&
    typeof line.window === 'number' &&
    (line.resource === undefined || typeof line.resource === 'string')
  )
}

function isConfirmedUnits(value: unknown): value is ConfirmedUnits {
  const entry = value as ConfirmedUnits
  return (
    typeof entry === 'object' &&
    entry !== null &&
    typeof entry.key === 'string' &&
    typeof entry.metric === 'string' &&
    typeof entry.window === 'number' &&
    Array.isArray(entry.acked) &&
    entry.acked.length % 2 === 0 &&
    entry.acked.every(isCount)
  )
}

function journalLine(line: Line, batch?: string): JournalLine {
  return {
    id: line.id,
    key: line.key,
    metric: line.metric,
    amount: line.amount,
    start: line.start,
    end: line.end,
    window: line.windowEnd,
    ...(line.dimensions ? { dimensions: line.dimensions } : {}),
    ...(line.properties ? { properties: line.properties } : {}),
    ...(line.resource ? { resource: line.resource } : {}),
    ...(batch ? { batch } : {}),
    ...(line.reason ? { reason: line.reason } : {}),
  }
}

/** What the meter holds that the journal keeps. */
export interface JournalParts {
  /** Batches not confirmed (failed, or in flight), each with its id. */
  readonly batches: readonly Batch[]
  readonly waiting: readonly Line[]
  readonly open: readonly Line[]
  readonly setAside: readonly Line[]
  readonly confirmed: readonly ConfirmedUnits[]
  /** Who wrote it (the writers of a shared storage tell each other apart by it). */
  readonly owner: Readonly<Record<string, unknown>>
  readonly granted: Readonly<Record<string, number>>
}

/** Where a journal read back goes. */
export interface RestoreTarget {
  readonly now: number
  readonly local: LocalUsage
  readonly queue: BatchQueue
  readonly setAside: SetAside
  readonly subjectOf: (key: string) => string | undefined
}

/**
 * The journal of what the meter holds now: every line not confirmed (in flight too: it may not have arrived), with
 * the batch it last went in, the set-aside lines, and confirmed units no token counts yet. Returns the text to
 * write and how many lines are unconfirmed.
 */
export function writeJournal(parts: JournalParts): { text: string; unconfirmed: number } {
  const lines: JournalLine[] = []
  for (const batch of parts.batches) for (const line of batch.lines) lines.push(journalLine(line, batch.id))
  for (const line of parts.waiting) lines.push(journalLine(line))
  for (const line of parts.open) lines.push(journalLine(line))
  const journal: Journal = {
    lines,
    setAside: parts.setAside.map((line) => journalLine(line)),
    confirmed: parts.confirmed,
    granted: parts.granted,
  }
  return { text: JSON.stringify({ v: 1, owner: parts.owner, ...journal }), unconfirmed: lines.length }
}

function lineOf(entry: JournalLine): Line {
  const line = createLine(
    entry.id,
    entry.key,
    entry.metric,
    entry.amount,
    entry.start,
    entry.window,
    -1,
    entry.dimensions,
    entry.properties,
    entry.resource,
  )
  line.end = entry.end
  line.reason = entry.reason
  return line
}

/**
 * Takes back what an earlier run (or a writer that is gone) left: every line sealed (its id may have reached the
 * server) and queued, batches kept whole with their ids, set-aside lines aside, confirmed units counted. A line the
 * protocol's rules now refuse is set aside, not sent. Returns what the journal recorded as granted per cap counter,
 * or `undefined` when the text is not a journal (the caller keeps it for a person).
 */
export function readJournal(text: string, into: RestoreTarget): Journal['granted'] | undefined {
  const journal = decodeJournal(text)
  if (journal === undefined) return undefined
  const { now, local, queue, setAside, subjectOf } = into
  const batches = new Map<string, Batch>()
  for (const entry of journal.lines) {
    const line = lineOf(entry)
    // Not confirmed before the restart: counted locally again, as the token's snapshot may not have it.
    local.restorePending(line, now)
    const reason = sealLine(line, subjectOf(line.key))
    if (reason !== undefined) setAside.add(line, reason)
    else if (entry.batch === undefined) queue.enqueue(line)
    else {
      let batch = batches.get(entry.batch)
      if (batch === undefined) {
        batch = { id: entry.batch, lines: [] }
        batches.set(entry.batch, batch)
        queue.restore(batch)
      }
      batch.lines.push(line)
    }
  }
  for (const entry of journal.setAside) {
    const line = lineOf(entry)
    sealLine(line, subjectOf(line.key))
    setAside.restore(line)
  }
  for (const entry of journal.confirmed) local.restoreConfirmed(entry, now)
  return journal.granted
}

/** Parses a journal: `undefined` when it is not one. Entries that fail the checks are skipped one by one. */
function decodeJournal(text: string): Journal | undefined {
  let journal: { v?: unknown; lines?: unknown; setAside?: unknown; confirmed?: unknown; granted?: unknown }
  try {
    journal = JSON.parse(text) as typeof journal
  } catch {
    return undefined
  }
  if (typeof journal !== 'object' || journal === null || journal.v !== 1 || !Array.isArray(journal.lines))
    return undefined
  return {
    lines: journal.lines.filter(isJournalLine),
    setAside: Array.isArray(journal.setAside) ? journal.setAside.filter(isJournalLine) : [],
    confirmed: Array.isArray(journal.confirmed) ? journal.confirmed.filter(isConfirmedUnits) : [],
    granted: countsOf(journal.granted),
  }
}

/** What a journal text recorded as granted per cap counter (nothing, when it is not a journal). */
export function grantedOf(text: string | undefined): Journal['granted'] {
  return text === undefined ? {} : (decodeJournal(text)?.granted ?? {})
}

/** A record of counts, with anything that is not one left out. */
function countsOf(value: unknown): Record<string, number> {
  const counts: Record<string, number> = {}
  if (typeof value !== 'object' || value === null) return counts
  for (const [key, count] of Object.entries(value)) if (isCount(count)) counts[key] = count
  return counts
}
