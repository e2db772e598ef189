import type { EntitlementStorage } from '../platform/storage.js'
import { withGetters } from '../platform/with-getters.js'

/** The usage journal's key, and the prefix of each writer's own when the storage is shared. */
export const JOURNAL_KEY = 'entitle:usage'
/** The reservations of metered caps (what `consume()` may have granted), likewise. */
export const RESERVATIONS_KEY = 'entitle:caps'

/** What a writer records beside its journal and reservations, so others can tell whether it still runs. */
export interface OwnerRecord {
  readonly id: string
  /** Set by `close()`: the writer is gone, and what it left is for the next to take. */
  readonly closed?: true
  readonly [key: string]: unknown
}

/** A writer that is gone, and what it left under its keys. */
export interface LeftBehind {
  readonly journal: string | undefined
  readonly reservations: string | undefined
  /** The keys to delete once what they hold is taken over. */
  readonly keys: readonly string[]
}

/** The owner record in a journal or reservations text, if it has one. */
export function ownerOf(text: string | undefined): OwnerRecord | undefined {
  if (text === undefined) return undefined
  try {
    const owner = (JSON.parse(text) as { owner?: unknown }).owner
    return typeof owner === 'object' && owner !== null && typeof (owner as OwnerRecord).id === 'string'
      ? (owner as OwnerRecord)
      : undefined
  } catch {
    return undefined
  }
}

/**
 * Which keys of the storage are this client's, and what other writers left. A storage that can list its keys and
 * tell its writers apart (`keys` and `owners`: the built-in ones can) is shared safely: each client writes only
 * under its own id, never touches a live writer's keys, and takes over those of a writer that is gone (crashed,
 * killed, closed). Any other storage belongs to one process: its keys are fixed, and a restart reads its own.
 */
export function createOwnership(storage: EntitlementStorage, makeId: () => string) {
  const shared = typeof storage.keys === 'function' && storage.owners !== undefined
  // Made on first use, not at construction: a random value (and the storage's claim) is what a Worker's module
  // scope refuses, and a client is made there. Only writers that share a storage need ids apart.
  let madeId: string | undefined
  const idNow = () => (madeId ??= shared ? makeId() : 'local')
  let madeRecord: OwnerRecord | undefined
  const recordNow = () => (madeRecord ??= { ...(shared ? storage.owners!.claim(idNow()) : {}), id: idNow() })
  const suffix = () => (shared ? `:${idNow()}` : '')

  async function gone(owner: OwnerRecord | undefined): Promise<boolean> {
    // A journal with no owner is a single process's (an earlier version, or one storage one process): the process
    // that finds it is its next start.
    if (owner === undefined || owner.closed) return true
    try {
      return !(await storage.owners!.alive(owner))
    } catch {
      return false
    }
  }

  const ownership = {
    shared,
    /** What this writer records beside what it writes. */
    record: recordNow,
    /** This writer is gone (`close()`): what it leaves is for the next to take. */
    close(): void {
      madeRecord = { ...recordNow(), closed: true }
    },

    /** What writers that are gone left (never this client's own, never a live writer's). */
    async leftBehind(read: (key: string) => Promise<string | undefined>): Promise<LeftBehind[]> {
      if (!shared) return []
      const keys = [...(await storage.keys!(JOURNAL_KEY)), ...(await storage.keys!(RESERVATIONS_KEY))].filter(
        (key) => !key.endsWith('.unreadable'),
      )
      const byWriter = new Map<string, string[]>()
      for (const key of keys) {
        const writer = key.startsWith(`${JOURNAL_KEY}:`)
          ? key.slice(JOURNAL_KEY.length + 1)
          : key.startsWith(`${RESERVATIONS_KEY}:`)
            ? key.slice(RESERVATIONS_KEY.length + 1)
            : ''
        if (writer === idNow()) continue
        byWriter.set(writer, [...(byWriter.get(writer) ?? []), key])
      }
      const found: LeftBehind[] = []
      for (const [writer, owned] of byWriter) {
        const journalKey = writer === '' ? JOURNAL_KEY : `${JOURNAL_KEY}:${writer}`
        const reservationsKey = writer === '' ? RESERVATIONS_KEY : `${RESERVATIONS_KEY}:${writer}`
        const journal = owned.includes(journalKey) ? await read(journalKey) : undefined
        const reservations = owned.includes(reservationsKey) ? await read(reservationsKey) : undefined
        if (await gone(ownerOf(journal) ?? ownerOf(reservations)))
          found.push({ journal, reservations, keys: owned })
      }
      return found
    },
  }
  return withGetters(ownership, {
    journalKey: (): string => JOURNAL_KEY + suffix(),
    reservationsKey: (): string => RESERVATIONS_KEY + suffix(),
  })
}

export type Ownership = ReturnType<typeof createOwnership>
