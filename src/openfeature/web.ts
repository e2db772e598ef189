import {
  type EvaluationContext,
  type JsonValue,
  OpenFeatureEventEmitter,
  type Provider,
  ProviderEvents,
  type ResolutionDetails,
} from '@openfeature/web-sdk'
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
 * An OpenFeature provider for the web SDK (`@openfeature/web-sdk`): evaluation is synchronous, from the client's
 * memory (`checkSync`). Initialising, and every context change, loads the customer named by `targetingKey` (or the
 * app's own token); until then flags answer their default with `PROVIDER_NOT_READY`. Mapping as for the server
 * provider.
 *
 * @example
 * ```ts
 * import { OpenFeature } from '@openfeature/web-sdk'
 * import { EntitlementsWebProvider } from 'entitle/openfeature/web'
 * await OpenFeature.setProviderAndWait(new EntitlementsWebProvider(entitlements))
 * const exportAllowed = OpenFeature.getClient().getBooleanValue('export', false)
 * ```
 */
export class EntitlementsWebProvider implements Provider {
  readonly metadata = { name: 'entitle' } as const
  readonly runsOn = 'client'
  readonly events = new OpenFeatureEventEmitter()
  readonly #client: EntitlementsClient
  readonly #options: EntitlementsProviderOptions
  #stop: (() => void) | undefined

  constructor(client: EntitlementsClient, options: EntitlementsProviderOptions = {}) {
    this.#client = client
    this.#options = options
  }

  async initialize(context?: EvaluationContext): Promise<void> {
    this.#stop ??= this.#client.on('change', ({ previous, changes }) => {
      if (previous === undefined) return
      const flagsChanged = flagsChangedOf(changes)
      this.events.emit(ProviderEvents.ConfigurationChanged, { flagsChanged })
    })
    await this.#client.load(checkContextOf(context).subject)
  }

  async onContextChange(_old: EvaluationContext, next: EvaluationContext): Promise<void> {
    await this.#client.load(checkContextOf(next).subject)
  }

  async onClose(): Promise<void> {
    this.#stop?.()
    this.#stop = undefined
  }

  #resolve<T>(
    flagKey: string,
    type: 'boolean' | 'number' | 'string' | 'object',
    defaultValue: T,
    context: EvaluationContext,
  ): ResolutionDetails<T> {
    try {
      const decision = this.#client.checkSync(flagKey, checkContextOf(context))
      return resolve(decision, type, defaultValue, this.#options) as ResolutionDetails<T>
    } catch (error) {
      return missingTargetingKey(defaultValue, error) as ResolutionDetails<T>
    }
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
