import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  createEntitlements,
  createMemoryUsageStore,
  type EntitlementsClient,
  type ErrorEvent,
  metering,
  type UsageCounterStore,
} from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'

const ISSUER = 'https://license.fleet.test'
let issuer: Awaited<ReturnType<typeof createTestIssuer>>
let clients: EntitlementsClient[] = []
beforeAll(async () => {
  issuer = await createTestIssuer({ issuer: ISSUER, audience: 'app' })
})
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close({ deadlineMs: 500 })))
  clients = []
})

async function client(
  options: {
    store?: UsageCounterStore
    policy?: 'closed' | 'local'
    used?: number
    trialEndsAt?: number
    soft?: boolean
    /** A usage meter that holds what it records (its server never answers). */
    meter?: boolean
  } = {},
) {
  const resetsAt = Math.floor(Date.now() / 1000) + 86_400
  const token = await issuer.issue(
    {
      plan: { id: 'team' },
      ...(options.trialEndsAt ? { term: { trialEndsAt: options.trialEndsAt } } : {}),
      features: {
        export: true,
        'api-calls': {
          cap: {
            limit: 10,
            period: 'month',
            used: options.used ?? 0,
            resetsAt,
            ...(options.soft ? { soft: true as const } : {}),
          },
        },
      },
    },
    { subject: 'acme' },
  )
  const made = createEntitlements({
    metering,
    token,
    keys: issuer.jwks,
    issuer: ISSUER,
    audience: 'app',
    ...(options.store ? { fleet: { store: options.store, onStoreError: options.policy ?? 'closed' } } : {}),
    ...(options.meter ? { usage: { url: 'http://127.0.0.1:9/', flushIntervalMs: 3_600_000 } } : {}),
  })
  const errors: ErrorEvent[] = []
  made.on('error', (event) => errors.push(event))
  clients.push(made)
  return { made, errors }
}

/** A store that works until told to fail, and counts what reaches it. */
function flaky(inner = createMemoryUsageStore()) {
  const state = { down: false, calls: 0 }
  const store: UsageCounterStore = {
    async consume(request) {
      state.calls++
      if (state.down) throw new Error('ECONNREFUSED')
      return inner.consume(request)
    },
  }
  return { store, state, inner }
}

describe('consume(): check and use in one step', () => {
  it('in one instance: exactly the cap, with no store at all, even when called all at once', async () => {
    const { made } = await client({ used: 3 })
    const results = await Promise.all(Array.from({ length: 20 }, () => made.consume('api-calls')))
    expect(results.filter((d) => d.allowed)).toHaveLength(7)
    expect(results.at(-1)).toMatchObject({ allowed: false, reason: 'usage_cap_reached', used: 10 })
    expect(made.stats().decisions['api-calls']).toMatchObject({ allowed: 7, denied: 13 })
    // A plain check sees what consume() counted.
    expect(made.checkSync('api-calls')).toMatchObject({ allowed: false, used: 10, remaining: 0 })
  })

  it('with a store: says what it counted, and consumes an amount', async () => {
    const { made } = await client({ store: createMemoryUsageStore(), used: 2 })
    expect(await made.consume('api-calls', { amount: 5 })).toMatchObject({
      allowed: true,
      used: 2,
      remaining: 3,
    })
    expect(await made.consume('api-calls', { amount: 4 })).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      used: 7,
      remaining: 3,
    })
    expect(await made.consume('export')).toMatchObject({ allowed: true, reason: 'granted' })
    expect(await made.consume('sso')).toMatchObject({ allowed: false, reason: 'not_in_plan' })
  })

  it('with a store: a trial stays a trial, and the decision is the one a check makes at the fleet count', async () => {
    const store = createMemoryUsageStore()
    const trialEndsAt = Math.floor(Date.now() / 1000) + 7 * 86_400
    const [one, other] = [await client({ store, trialEndsAt }), await client({ store, trialEndsAt })]
    expect(await one.made.consume('api-calls', { amount: 4 })).toMatchObject({
      allowed: true,
      reason: 'trial',
      used: 0,
      remaining: 6,
    })
    // The other instance has counted nothing itself; the fleet's count decides, with the trial's reason.
    expect(await other.made.consume('api-calls', { amount: 3 })).toMatchObject({
      allowed: true,
      reason: 'trial',
      used: 4,
      remaining: 3,
    })
    expect(await other.made.consume('api-calls', { amount: 4 })).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      used: 7,
      remaining: 3,
    })
    expect(other.made.stats().decisions['api-calls']).toMatchObject({ allowed: 1, denied: 1 })
  })

  it('with a store: the fleet count decides, so a trial past a soft cap by this instance alone stays a trial', async () => {
    const trialEndsAt = Math.floor(Date.now() / 1000) + 7 * 86_400
    const { made } = await client({ store: createMemoryUsageStore(), trialEndsAt, soft: true, meter: true })
    await made.check('api-calls')
    // Recorded here, not consumed: checks in this instance count it, the fleet's counter does not.
    made.record('api-calls', 11)
    expect(made.checkSync('api-calls')).toMatchObject({ allowed: true, reason: 'overage', used: 11 })
    const decision = await made.consume('api-calls')
    expect(decision).toMatchObject({ allowed: true, reason: 'trial', used: 0, remaining: 9 })
    expect(decision.overage).toBeUndefined()
  })

  it("store down, policy 'closed': denied as unavailable, reported, and back when the store is", async () => {
    const { store, state } = flaky()
    const { made, errors } = await client({ store, policy: 'closed' })
    expect((await made.consume('api-calls')).allowed).toBe(true)
    state.down = true
    expect(await made.consume('api-calls')).toMatchObject({ allowed: false, reason: 'unavailable' })
    expect(errors.map((e) => [e.during, e.error.code])).toEqual([['fleet', 'store_unavailable']])
    state.down = false
    expect(await made.consume('api-calls')).toMatchObject({ allowed: true, used: 1 })
  })

  it("store down, policy 'local': counts from the last fleet count seen, then tells the fleet what it used", async () => {
    const { store, state, inner } = flaky()
    const { made } = await client({ store, policy: 'local' })
    // Another instance has used 6 of 10: this one sees it on its first call.
    await inner.consume({
      key: `acme:api-calls:${(await made.load())!.usage.get('api-calls')!.resetsAt}`,
      amount: 6,
      limit: 10,
      baseline: 0,
      expiresAt: undefined,
    })
    expect(await made.consume('api-calls')).toMatchObject({ allowed: true, used: 6 })
    state.down = true
    // Offline, it allows what was left when it last saw the fleet (3 more), not a fresh 10.
    const offline = await Promise.all(Array.from({ length: 5 }, () => made.consume('api-calls')))
    expect(offline.map((d) => d.allowed)).toEqual([true, true, true, false, false])
    state.down = false
    // Back: the 3 it used are added to the shared counter first, so the fleet sees 10 of 10.
    expect(await made.consume('api-calls')).toMatchObject({ allowed: false, used: 10 })
  })
})

describe("the fleet's outage bound, with instances whose views differ", () => {
  /** An instance of a fleet of `instances` on `store`, cap 100 a month. */
  async function instance(store: UsageCounterStore, instances: number) {
    const resetsAt = Math.floor(Date.now() / 1000) + 86_400
    const token = await issuer.issue(
      { features: { 'api-calls': { cap: { limit: 100, period: 'month', used: 0, resetsAt } } } },
      { subject: 'acme' },
    )
    const made = createEntitlements({
      metering,
      token,
      keys: issuer.jwks,
      issuer: ISSUER,
      audience: 'app',
      fleet: { store, onStoreError: 'local', instances, viewMaxAgeMs: 30_000 },
    })
    clients.push(made)
    return made
  }
  const allowedOf = async (made: EntitlementsClient, times: number) => {
    let allowed = 0
    for (let i = 0; i < times; i++) if ((await made.consume('api-calls')).allowed) allowed++
    return allowed
  }

  it('an instance that never saw the fleet’s count allows nothing in an outage; one that did, its share of what was left', async () => {
    const { store, state } = flaky()
    const a = await instance(store, 2)
    const b = await instance(store, 2)
    expect(await allowedOf(b, 90)).toBe(90)
    state.down = true
    // It used to be 100 more from A (counting from its token's snapshot) and 10 from B: 200 of 100.
    const during = (await allowedOf(a, 100)) + (await allowedOf(b, 100))
    expect(during).toBe(5)
    state.down = false
    // Back: what B used in the outage reaches the store first; the fleet never passed its cap.
    expect(await a.consume('api-calls')).toMatchObject({ allowed: true })
    expect(await allowedOf(b, 10)).toBe(100 - 90 - 5 - 1)
  })

  it('views that differ pass the cap by no more than the fleet consumed in viewMaxAgeMs before the outage', async () => {
    const { store, state } = flaky()
    const a = await instance(store, 2)
    const b = await instance(store, 2)
    expect(await allowedOf(a, 5)).toBe(5)
    // B consumes 85 after A last looked: A's view (5) is stale by 85, within the 30 s window.
    expect(await allowedOf(b, 85)).toBe(85)
    state.down = true
    const during = (await allowedOf(a, 100)) + (await allowedOf(b, 100))
    const left = 100 - 90
    expect(during - left).toBeGreaterThan(0)
    expect(during - left).toBeLessThanOrEqual(85)
    // A counts from 5: its share is (100 - 5) / 2; B's, (100 - 90) / 2.
    expect(during).toBe(47 + 5)
  })
})
