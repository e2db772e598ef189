import type { LicenseServerClient } from '../transport/license-server-client.js'
import { createMemoryUsageStore } from '../usage/counter-store.js'
import { checkRecord, checkResource, cleanRecordExtras } from '../usage/validate.js'
import type { Answerer } from './answers/answer.js'
import type { DecisionStats } from './answers/decision-stats.js'
import type { ClientConfig } from './config.js'
import { createConsume } from './consume/consume.js'
import { createCreditBook } from './credits/credit-book.js'
import { createCreditSpending } from './credits/reserve.js'
import type { CheckContext, ErrorEvent, Metering, RecordContext } from './options.js'
import type { SerializedStorage } from './serialized-storage.js'
import { alertsOn, type Thresholds } from './thresholds.js'
import type { Entry } from './tokens/cache-entry.js'
import type { TokenCache } from './tokens/token-cache.js'
import { assembleUsageState } from './usage-state.js'

/** What the metering parts read of the client, made before them. */
export interface MeteringInputs {
  readonly storage: SerializedStorage
  readonly report: (during: ErrorEvent['during'], subject: string | undefined, error: unknown) => void
  readonly background: (work: Promise<unknown>) => void
  /** The token cache's entry for a key, without touching its recency (the cache is made after this). */
  readonly peek: (key: string) => Entry | undefined
}

/** What `record()`, `consume()` and `reserve()` read of the client, made after the counts (the answerer counts them). */
export interface ActionInputs {
  readonly tokens: TokenCache
  readonly answerer: Answerer
  readonly stats: DecisionStats
  readonly thresholds: Thresholds
  readonly keyOf: (context: CheckContext) => string
  readonly isClosed: () => boolean
}

/**
 * Builds a client's metering in two steps. First the counts a check reads (the meter and its journal, the caps'
 * reservations, the in-process counters, the credit book), then, once the answerer that reads them exists, what
 * changes them: `record()`, `consume()` and credit holds.
 */
function assembleMetering(
  config: ClientConfig,
  server: LicenseServerClient | undefined,
  inputs: MeteringInputs,
) {
  const { platform } = config
  const { ownership, reservations, meter, takeover } = assembleUsageState(config, server, inputs)
  // Without a fleet, what consume() counts without a meter stays in this process.
  const localCounters = config.fleet === undefined ? createMemoryUsageStore(() => platform.now()) : undefined
  const credits = createCreditBook({
    meter,
    localCounters: meter === undefined ? localCounters : undefined,
    reservations,
  })

  function actions(parts: ActionInputs) {
    const { tokens, answerer, stats, thresholds, keyOf } = parts
    const report = inputs.report
    const creditSpending = createCreditSpending({
      ...{ config, answerer, stats, book: credits, meter, reservations, report },
      localCounters: meter === undefined ? localCounters : undefined,
    })
    const consume = createConsume({
      ...{ creditSpending, config, tokens, answerer, stats, meter, localCounters, reservations, keyOf },
      ...{ isClosed: parts.isClosed, report, thresholds },
    })

    function record(metric: string, amount: number, context: RecordContext): void {
      if (meter === undefined)
        throw new TypeError('record() needs somewhere to send usage: a server, or usage.url')
      checkRecord(metric, amount)
      const key = keyOf(context)
      let { dimensions, properties } = context
      const { resource } = context
      if (dimensions !== undefined || properties !== undefined)
        ({ dimensions, properties } = cleanRecordExtras(dimensions, properties))
      if (resource !== undefined) checkResource(resource)
      const entry = tokens.peek(key)
      meter.record(key, metric, amount, platform.now(), entry, dimensions, properties, resource)
      answerer.invalidate(entry, metric)
      // A usage alert this record crossed.
      if (alertsOn(entry, metric))
        thresholds.observe(entry.entitlements, metric, answerer.usedNow(entry, key, metric))
    }

    return {
      record,
      consume: consume.consume,
      consumeHere: consume.consumeHere,
      reserve: creditSpending.reserve,
    }
  }

  return { ownership, reservations, meter, takeover, localCounters, credits, actions }
}

/** The plug-in as the client sees it: what `metering` is underneath its opaque public type. */
export interface MeteringPlugin extends Metering {
  readonly assemble: typeof assembleMetering
}

export type MeteringParts = ReturnType<typeof assembleMetering>
export type MeteringActions = ReturnType<MeteringParts['actions']>

/**
 * Usage metering for a client: `record()`, `consume()`, `consumeSync()`, credit holds (`reserve()`), the usage
 * meter and its journal, usage alerts on records, and the fleet's shared counts. Passed as
 * `createEntitlements({ ..., metering })`; a client made without it only checks, and an app that never imports it
 * (a browser app that only checks) bundles none of its code.
 *
 * @example
 * ```ts
 * import { createEntitlements, metering } from 'entitle'
 *
 * const entitlements = createEntitlements({ server, keys, issuer, audience, metering })
 * entitlements.record('api-calls', 1, { subject: customerId })
 * ```
 */
export const metering: Metering = /* @__PURE__ */ Object.freeze({
  name: 'metering',
  assemble: assembleMetering,
} satisfies MeteringPlugin)
