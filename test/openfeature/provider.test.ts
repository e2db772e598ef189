import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk'
import { OpenFeature as OpenFeatureWeb } from '@openfeature/web-sdk'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { EntitlementClaim } from '../../src/core/claims.js'
import {
  createEntitlements,
  createMemoryStorage,
  type EntitlementStorage,
  type EntitlementsClient,
} from '../../src/index.js'
import { EntitlementsProvider } from '../../src/openfeature/server.js'
import { EntitlementsWebProvider } from '../../src/openfeature/web.js'
import { createTestIssuer } from '../../src/testing.js'

const SERVER = 'https://license.of.test'
let issuer: Awaited<ReturnType<typeof createTestIssuer>>
const plans = new Map<string, Partial<EntitlementClaim>>()
let clients: EntitlementsClient[] = []

beforeAll(async () => {
  issuer = await createTestIssuer({ issuer: SERVER, audience: 'app' })
})
afterEach(async () => {
  down = false
  await OpenFeature.clearProviders()
  await OpenFeatureWeb.clearProviders()
  await Promise.all(clients.map((client) => client.close({ deadlineMs: 0 })))
  clients = []
})

const TEAM: Partial<EntitlementClaim> = {
  plan: { id: 'team' },
  features: { export: true, seats: { limit: 10 }, reports: { roles: ['admin'] } },
  upgrades: { sso: { plan: 'business' } },
}

/** A multi-tenant client whose license server runs in-process (unreachable while `down`). */
let down = false
function client(storage?: EntitlementStorage): EntitlementsClient {
  plans.set('acme', TEAM)
  const made = createEntitlements({
    ...(storage ? { storage } : {}),
    server: { url: SERVER, revocationIntervalMs: 0 },
    keys: issuer.jwks,
    issuer: SERVER,
    audience: 'app',
    platform: {
      fetch: async (input, init) => {
        if (down) throw new TypeError('fetch failed')
        const url = new URL(new Request(input, init).url)
        if (url.pathname === '/v1/revocations') return Response.json({ revoked: [] })
        const subject = decodeURIComponent(url.pathname.split('/').pop()!)
        if (subject === 'garbage') return new Response('not.a.token')
        const plan = plans.get(subject)
        return plan
          ? new Response(await issuer.issue(plan, { subject }))
          : new Response(null, { status: 404 })
      },
    },
  })
  clients.push(made)
  return made
}

// Scenarios of OpenFeature's evaluation suite (open-feature/spec, specification/assets/gherkin/evaluation.feature),
// where they apply to entitlements, run through the real server SDK. The suite's own flags (boolean-flag,
// string-flag, …) are replaced by features of a plan.
describe('OpenFeature server SDK: evaluation scenarios', () => {
  async function of() {
    await OpenFeature.setProviderAndWait(new EntitlementsProvider(client()))
    return OpenFeature.getClient()
  }
  const acme = { targetingKey: 'acme' }

  it('Resolves boolean value', async () => {
    expect(await (await of()).getBooleanValue('export', false, acme)).toBe(true)
  })
  it('Resolves integer value', async () => {
    expect(await (await of()).getNumberValue('seats', 0, acme)).toBe(10)
  })
  it('Resolves string value (the decision reason)', async () => {
    expect(await (await of()).getStringValue('export', 'unknown', acme)).toBe('granted')
  })
  it('Resolves object value (the decision)', async () => {
    expect(await (await of()).getObjectValue('seats', {}, acme)).toMatchObject({
      allowed: true,
      feature: 'seats',
      limit: 10,
      plan: 'team',
    })
  })
  it('Resolves boolean details: value, variant, reason, metadata', async () => {
    const details = await (await of()).getBooleanDetails('sso', true, acme)
    expect(details).toMatchObject({
      value: false,
      variant: 'not_in_plan',
      reason: 'TARGETING_MATCH',
      flagMetadata: { reason: 'not_in_plan', plan: 'team', upgradePlan: 'business' },
    })
    expect(details.errorCode).toBeUndefined()
  })
  it('Resolves integer details', async () => {
    const details = await (await of()).getNumberDetails('seats', 0, { ...acme, usage: 4 })
    expect(details).toMatchObject({ value: 6, variant: 'granted', reason: 'TARGETING_MATCH' })
  })
  it('Resolves based on context (roles)', async () => {
    const flags = await of()
    expect(await flags.getBooleanValue('reports', false, { ...acme, roles: ['admin'] })).toBe(true)
    expect(await flags.getBooleanValue('reports', true, { ...acme, roles: ['viewer'] })).toBe(false)
  })
  it('Type error: a number asked of a plain flag is the default, with TYPE_MISMATCH', async () => {
    const details = await (await of()).getNumberDetails('export', 7, acme)
    expect(details).toMatchObject({ value: 7, reason: 'ERROR', errorCode: 'TYPE_MISMATCH' })
  })
  it('Flag not found: an unknown feature is an answer (not in the plan), not an error', async () => {
    const details = await (await of()).getBooleanDetails('no-such-feature', true, acme)
    expect(details).toMatchObject({ value: false, variant: 'not_in_plan', reason: 'TARGETING_MATCH' })
  })
  it('no targeting key on a multi-tenant client: the default, with TARGETING_KEY_MISSING', async () => {
    const details = await (await of()).getBooleanDetails('export', true)
    expect(details).toMatchObject({
      value: true,
      reason: 'ERROR',
      errorCode: 'TARGETING_KEY_MISSING',
      errorMessage:
        'the evaluation context needs a targetingKey: the customer to check (this provider serves many customers)',
    })
  })
  it('a customer with no license: false, not an error; no usable token: the default with GENERAL', async () => {
    const flags = await of()
    expect(await flags.getBooleanDetails('export', true, { targetingKey: 'nobody' })).toMatchObject({
      value: false,
      variant: 'not_in_plan',
    })
    const withError = await flags.getBooleanDetails('export', true, { targetingKey: 'garbage' })
    expect(withError).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'GENERAL' })
  })
  it('says STALE for a token read from storage after a restart that its server has not confirmed', async () => {
    const storage = createMemoryStorage()
    const first = client(storage)
    await first.load('acme')
    await first.close()
    down = true
    await OpenFeature.setProviderAndWait(new EntitlementsProvider(client(storage)))
    expect(await OpenFeature.getClient().getBooleanDetails('export', false, acme)).toMatchObject({
      value: true,
      reason: 'STALE',
    })
  })
  it('emits PROVIDER_CONFIGURATION_CHANGED with the features that changed', async () => {
    const entitlements = client()
    await OpenFeature.setProviderAndWait(new EntitlementsProvider(entitlements))
    const changed: string[][] = []
    OpenFeature.addHandler(ProviderEvents.ConfigurationChanged, (details) =>
      changed.push((details?.flagsChanged as string[] | undefined) ?? []),
    )
    await entitlements.load('acme')
    plans.set('acme', { ...TEAM, features: { ...TEAM.features, sso: true } })
    await entitlements.refresh('acme')
    await expect.poll(() => changed).toEqual([['sso']])
  })

  it('listens once however often it is initialized, and again after a close', async () => {
    const entitlements = client()
    const provider = new EntitlementsProvider(entitlements)
    const changed: string[][] = []
    provider.events.addHandler(ProviderEvents.ConfigurationChanged, (details) =>
      changed.push((details?.flagsChanged as string[] | undefined) ?? []),
    )
    await provider.initialize()
    await provider.initialize()
    await entitlements.load('acme')
    plans.set('acme', { ...TEAM, features: { ...TEAM.features, sso: true } })
    await entitlements.refresh('acme')
    await expect.poll(() => changed).toEqual([['sso']])
    await provider.onClose()
    await provider.initialize()
    plans.set('acme', TEAM)
    await entitlements.refresh('acme')
    await expect.poll(() => changed).toEqual([['sso'], ['sso']])
    await new Promise((done) => setTimeout(done, 50))
    expect(changed).toHaveLength(2)
  })
})

describe('OpenFeature web SDK: synchronous evaluation from memory', () => {
  it('loads the customer of the context, evaluates synchronously, and follows context changes', async () => {
    plans.set('globex', { plan: { id: 'free' }, features: {} })
    const entitlements = client()
    await OpenFeatureWeb.setContext({ targetingKey: 'acme' })
    await OpenFeatureWeb.setProviderAndWait(new EntitlementsWebProvider(entitlements))
    const flags = OpenFeatureWeb.getClient()
    expect(flags.getBooleanValue('export', false)).toBe(true)
    expect(flags.getNumberValue('seats', 0)).toBe(10)
    expect(flags.getBooleanDetails('sso', true)).toMatchObject({ value: false, variant: 'not_in_plan' })
    await OpenFeatureWeb.setContext({ targetingKey: 'globex' })
    expect(flags.getBooleanDetails('export', true)).toMatchObject({ value: false, variant: 'not_in_plan' })
    expect(flags.getNumberDetails('export', 3)).toMatchObject({ value: 0, variant: 'not_in_plan' })
  })

  it('answers PROVIDER_NOT_READY for a customer not loaded yet', async () => {
    const entitlements = client()
    await OpenFeatureWeb.setContext({ targetingKey: 'acme' })
    await OpenFeatureWeb.setProviderAndWait(new EntitlementsWebProvider(entitlements))
    expect(OpenFeatureWeb.getClient().getBooleanValue('export', false)).toBe(true)
    const other = new EntitlementsWebProvider(entitlements).resolveBooleanEvaluation('export', true, {
      targetingKey: 'not-yet',
    })
    expect(other).toMatchObject({ value: true, reason: 'ERROR', errorCode: 'PROVIDER_NOT_READY' })
  })
})
