import { withGetters } from '../platform/with-getters.js'
import type { LicenseServerClient } from '../transport/license-server-client.js'
import type { ClientConfig } from './config.js'
import { createReservations } from './consume/reservations.js'
import type { ErrorEvent } from './options.js'
import { createOwnership } from './ownership.js'
import type { SerializedStorage } from './serialized-storage.js'
import { createTakeover } from './takeover.js'
import type { Entry } from './tokens/cache-entry.js'
import { createClientMeter } from './usage-destination.js'

const NOTHING_GRANTED: Readonly<Record<string, number>> = Object.freeze({})

/** An id for this client among the writers of its storage: random, new at each start. */
function randomId(): string {
  let id = ''
  for (const byte of crypto.getRandomValues(new Uint8Array(8))) id += byte.toString(16).padStart(2, '0')
  return id
}

/**
 * What the client keeps of usage that must outlive the process: whose keys in the storage are its own, the caps'
 * reservations (a kill -9 cannot reset a cap), the meter and its journal, and the takeover of what gone writers
 * left.
 */
export function assembleUsageState(
  config: ClientConfig,
  server: LicenseServerClient | undefined,
  parts: {
    readonly storage: SerializedStorage
    readonly report: (during: ErrorEvent['during'], subject: string | undefined, error: unknown) => void
    readonly background: (work: Promise<unknown>) => void
    /** The token cache's entry for a key, without touching its recency (made after this). */
    readonly peek: (key: string) => Entry | undefined
  },
) {
  const { platform } = config
  const { storage, report, background } = parts
  const ownership = createOwnership(config.storage, randomId)
  // Only a storage the app gave outlives the process: the default one needs no reservation to survive a crash.
  const reservations =
    config.persistTokens && config.fleet === undefined
      ? createReservations(
          withGetters(
            {
              storage: config.storage,
              owner: ownership.record,
              now: () => platform.now(),
              failed: (error: unknown) => report('storage', undefined, error),
            },
            { key: () => ownership.reservationsKey },
          ),
        )
      : undefined
  const meter =
    config.usage &&
    createClientMeter(config.usage, server, {
      platform,
      storage,
      journal: withGetters(
        { owner: ownership.record, granted: () => reservations?.grantedNow() ?? NOTHING_GRANTED },
        { key: () => ownership.journalKey },
      ),
      peek: parts.peek,
      report: (error) => report('usage', undefined, error),
      background,
    })
  const takeover = createTakeover({
    ownership,
    storage,
    meter,
    reservations,
    platform,
    keepLooking: config.persistTokens,
    background,
  })
  return { ownership, reservations, meter, takeover }
}
