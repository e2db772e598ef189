import { EntitlementError } from '../core/errors.js'
import type { Platform } from '../platform/platform.js'
import { type JournalParts, writeJournal } from './journal.js'

/**
 * When the meter's journal is written: at most `persistIntervalMs` after anything it holds changed, while anything
 * is unconfirmed, and at once on `flush()` and `close()`. Writing only when something changed keeps an idle meter
 * from writing at all; the timer runs only while there is something to lose.
 */
export function createPersistence(parts: {
  readonly platform: Platform
  /** Where the journal is written: this writer's own key. */
  readonly key: string
  readonly persistIntervalMs: number
  /** What the journal holds now. */
  readonly contents: () => JournalParts
  /** Lines not confirmed: while there are any, the timer keeps running. */
  readonly unconfirmed: () => number
  readonly read: (key: string) => Promise<string | undefined>
  readonly write: (key: string, value: string) => void
  readonly fail: (error: EntitlementError) => void
}) {
  const { platform } = parts
  let timer: unknown
  let dirty = false
  let stopped = false

  /** Writes the journal, when anything it holds changed; returns the lines not confirmed. */
  function persist(): number {
    if (!dirty) return parts.unconfirmed()
    dirty = false
    const { text, unconfirmed } = writeJournal(parts.contents())
    parts.write(parts.key, text)
    return unconfirmed
  }

  function arm(): void {
    if (stopped) return
    timer = platform.setTimeout(() => {
      timer = undefined
      persist()
      if (parts.unconfirmed() > 0) arm()
    }, parts.persistIntervalMs)
  }

  return {
    /** Something the journal holds changed: it is written within `persistIntervalMs`. */
    changed(): void {
      dirty = true
      if (timer === undefined) arm()
    },
    /** Something changed that the next write must include, without arming the timer (a batch in flight). */
    touched(): void {
      dirty = true
    },
    /** Writes now (whatever changed or not); returns the lines not confirmed. */
    now(): number {
      dirty = true
      return persist()
    },

    /**
     * Reads back the journal under `key` through `take` (`readJournal`: `undefined` when the text is not a
     * journal); an unreadable journal is kept for a person. Resolves to what `take` returned, if it read one.
     */
    async restore<T>(key: string, take: (text: string) => T | undefined): Promise<T | undefined> {
      const text = await parts.read(key)
      if (text === undefined) return undefined
      return this.adopt(key, text, take)
    },

    /** `restore` of a text already read (a gone writer's journal). */
    adopt<T>(key: string, text: string, take: (text: string) => T | undefined): T | undefined {
      const taken = take(text)
      if (taken !== undefined) return taken
      // Unreadable, yet it may be someone's invoice: kept under another key for a person to look at.
      parts.write(`${key}.unreadable`, text)
      parts.fail(
        new EntitlementError('storage_failed', `the usage journal is unreadable; kept as ${key}.unreadable`),
      )
      return undefined
    },

    /** Stops the timer; `now()` still writes. */
    stop(): void {
      stopped = true
      platform.clearTimeout(timer)
      timer = undefined
    },
  }
}

export type Persistence = ReturnType<typeof createPersistence>
