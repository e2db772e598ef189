import {
  type EvaluationContext,
  type JsonValue,
  OpenFeatureEventEmitter,
  type Provider,
  ProviderEvents,
  type ResolutionDetails,
} from '@openfeature/server-sdk'
import type { EntitlementsClient } from '../client/index.js'
import {
  checkContextOf,
  type EntitlementsProviderOptions,
  flagsChangedOf,
  missingTargetingKey,
  resolve,
} from './resolve.js'

export type { EntitlementsProviderOptions } from './resolve.js'

/**
 * An OpenFeature provider for the server SDK (`@openfeature/server-sdk`), backed by an entitlements client: teams
 * that evaluate flags through OpenFeature get entitlements with no new API. A boolean flag is "the feature is
 * allowed"; a number is what is left (or the limit); a string is the decision's reason; an object is the whole
 * decision. `targetingKey` is the customer; `roles`, `region`, `device`, `amount` pass through. An entitlement change
 * is a `PROVIDER_CONFIGURATION_CHANGED` event naming the features that changed.
 *
 * @example
 * ```ts
 * import { OpenFeature } from '@openfeature/server-sdk'
 * import { EntitlementsProvider } from 'entitle/openfeature'
 * await OpenFeature.setProviderAndWait(new EntitlementsProvider(entitlements))
 * const sso = await OpenFeature.getClient().getBooleanValue('sso', false, { targetingKey: customerId })
 * ```
 */
export class EntitlementsProvider implements Provider {
  readonly metadata = { name: 'entitle' } as const
  readonly runsOn = 'server'
  readonly events = new OpenFeatureEventEmitter()
  readonly #client: EntitlementsClient
  readonly #options: EntitlementsProviderOptions
  #stop: (() => void) | undefined

  constructor(client: EntitlementsClient, options: EntitlementsProviderOptions = {}) {
    this.#client = client
    this.#options = options
  }

  async initialize(): Promise<void> {
    // Listens once: initialized again without a close in between, it must not announce each change twice.
    this.#stop ??= this.#client.on('change', ({ subject, previous, changes }) => {
      if (previous === undefined) return
      const flagsChanged = flagsChangedOf(changes)
      this.events.emit(ProviderEvents.ConfigurationChanged, {
        flagsChanged,
        metadata: { subject, changes: changes.map((change) => change.type).join(',') },
      })
    })
  }

  async onClose(): Promise<void> {
    this.#stop?.()
    this.#stop = undefined
  }

  async #resolve<T>(
    flagKey: string,
    type: 'boolean' | 'number' | 'string' | 'object',
    defaultValue: T,
    context: EvaluationContext,
  ): Promise<ResolutionDetails<T>> {
    let decision: Awaited<ReturnType<EntitlementsClient['check']>>
    try {
      decision = await this.#client.check(flagKey, checkContextOf(context))
    } catch (error) {
      // A multi-tenant client asked about nobody.
      return missingTargetingKey(defaultValue, error) as ResolutionDetails<T>
    }
    return resolve(decision, type, defaultValue, this.#options) as ResolutionDetails<T>
  }

  resolveBooleanEvaluation(flagKey: string, defaultValue: boolean, context: EvaluationContext) {
    return this.#resolve(flagKey, 'boolean', defaultValue, context)
  }
  resolveStringEvaluation(flagKey: string, defaultValue: string, context: EvaluationContext) {
    return this.#resolve(flagKey, 'string', defaultValue, context)
  }
  resolveNumberEvaluation(flagKey: string, defaultValue: number, context: EvaluationContext) {
    return this.#resolve(flagKey, 'number', defaultValue, context)
  }
  resolveObjectEvaluation<T extends JsonValue>(flagKey: string, defaultValue: T, context: EvaluationContext) {
    return this.#resolve(flagKey, 'object', defaultValue, context)
  }
}
