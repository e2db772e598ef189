import type { Platform } from '../platform/platform.js'
import { grantedOf } from '../usage/journal.js'
import type { UsageMeter } from '../usage/meter.js'
import type { Reservations } from './consume/reservations.js'
import { JOURNAL_KEY, type Ownership } from './ownership.js'
import type { SerializedStorage } from './serialized-storage.js'

/** How often a running client looks for what gone writers of a shared storage left. */
const LOOK_EVERY_MS = 60_000

/**
 * What survives a crash, brought back: at start, this writer's own journal and reservations (a storage that is one
 * process's), then, on a shared storage, what every writer that is gone left (journals sent from here, with their
 * ids, so once; reservations counted against the caps); and again every minute while the client runs. A gone
 * writer's keys are deleted only once what they held is written down under this writer's.
 */
export function createTakeover(parts: {
  readonly ownership: Ownership
  readonly storage: SerializedStorage
  readonly meter: UsageMeter | undefined
  readonly reservations: Reservations | undefined
  readonly platform: Platform
  /** Whether to keep looking while the client runs (a storage the app gave, that others may share). */
  readonly keepLooking: boolean
  readonly background: (work: Promise<unknown>) => void
}) {
  const { ownership, storage, meter, reservations, platform } = parts
  let timer: unknown
  let stopped = false

  async function takeOver(): Promise<void> {
    for (const left of await ownership.leftBehind(storage.read)) {
      const taken: string[] = []
      let granted: Readonly<Record<string, number>> = grantedOf(left.journal)
      const journalKey = left.keys.find((key) => key.startsWith(JOURNAL_KEY))
      if (meter !== undefined && left.journal !== undefined && journalKey !== undefined) {
        granted = meter.adopt(journalKey, left.journal) ?? granted
        taken.push(journalKey)
      }
      if (reservations !== undefined) {
        await reservations.adopt(left.reservations, granted)
        taken.push(...left.keys.filter((key) => key !== journalKey))
      }
      await storage.settled()
      for (const key of taken) storage.write(key, undefined)
    }
  }

  function lookLater(): void {
    if (
      stopped ||
      !ownership.shared ||
      !parts.keepLooking ||
      (meter === undefined && reservations === undefined)
    )
      return
    timer = platform.setTimeout(() => {
      parts.background(takeOver().finally(lookLater))
    }, LOOK_EVERY_MS)
  }

  return {
    /** At start: this writer's own (a storage one process's), then what gone writers left. */
    async restore(): Promise<void> {
      const granted = await meter?.restore()
      if (reservations !== undefined && !ownership.shared)
        await reservations.adopt(await storage.read(ownership.reservationsKey), granted ?? {})
      await takeOver()
      lookLater()
    },
    stop(): void {
      stopped = true
      platform.clearTimeout(timer)
    },
  }
}
