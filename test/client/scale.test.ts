import { HttpResponse, http } from 'msw'
import { beforeEach, describe, expect, it } from 'vitest'
import type { EntitlementClaim } from '../../src/core/claims.js'
import { createMemoryStorage, createMemoryUsageStore, decide } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { seeded } from '../helpers.js'
import { clientFixture } from './fixture.js'
import { SERVER } from './harness.js'

const fx = clientFixture()
const client = fx.client
let usageLines: number
beforeEach(() => {
  usageLines = 0
  fx.msw.use(
    http.post(`${SERVER}/v1/usage`, async ({ request }) => {
      const body = (await request.json()) as { lines: Array<{ id: string }> }
      usageLines += body.lines.length
      return HttpResponse.json({ lines: body.lines.map(({ id }) => ({ id, status: 'accepted' })) })
    }),
  )
})

const resetsAt = () => Math.floor(fx.clock.now / 1000) + 86_400

describe('many customers in one client', () => {
  it('never answers one customer with another’s memoized answer, though many share the memo slots', async () => {
    const random = seeded(7)
    const names = Array.from({ length: 40 }, (_, i) => `f${i}`)
    const subjects = Array.from({ length: 16 }, (_, i) => `customer-${i}`)
    for (const [n, subject] of subjects.entries()) {
      const features: EntitlementClaim['features'] = {}
      for (const [i, name] of names.entries()) {
        if ((i + n) % 3 === 0) continue // each customer lacks a different third
        features[name] =
          i % 4 === 0
            ? { cap: { limit: 5 + n, period: 'month', used: n % 4, resetsAt: resetsAt() } }
            : i % 4 === 1
              ? { limit: n * 10 + i }
              : true
      }
      fx.server.sell(subject, { plan: { id: `plan-${n % 5}` }, features })
    }
    // 16 customers x 40 features and made-up names, in 256 slots: they collide.
    const entitlements = client({ maxSubjects: 16 })
    await Promise.all(subjects.map((subject) => entitlements.load(subject)))
    const recorded = new Map<string, number>()
    for (let i = 0; i < 20_000; i++) {
      const subject = subjects[Math.floor(random() * subjects.length)]!
      const feature =
        random() < 0.1 ? `made-up-${Math.floor(random() * 50)}` : names[Math.floor(random() * 40)]!
      if (random() < 0.05 && feature.startsWith('f')) {
        entitlements.record(feature, 1, { subject })
        recorded.set(`${subject} ${feature}`, (recorded.get(`${subject} ${feature}`) ?? 0) + 1)
        continue
      }
      const answer = entitlements.checkSync(feature, { subject })
      const held = entitlements.entitlements(subject)!
      // What decide() says from this customer's own token, with what was recorded here for a metered cap.
      const usage = held.features.get(feature)?.cap ? (recorded.get(`${subject} ${feature}`) ?? 0) : 0
      const expected = decide(held, feature, usage > 0 ? { subject, usage } : { subject }, fx.clock.now)
      expect({ ...answer, source: undefined, age: undefined }).toEqual(expected)
      expect(answer.subject).toBe(subject)
    }
  })

  it('answers checks with roles as decide() does, memoized or not, and counts each one once', async () => {
    const random = seeded(11)
    const soon = Math.floor(fx.clock.now / 1000) + 30
    fx.server.sell('acme', {
      plan: { id: 'team' },
      features: {
        export: true,
        reports: { roles: ['admin', 'analyst'] },
        calls: { cap: { limit: 40, period: 'month', used: 0, resetsAt: resetsAt() }, roles: ['admin'] },
        // A trial that ends during the test: both memoized answers must end with it.
        beta: { roles: ['admin'], term: { trialEndsAt: soon } },
      },
    })
    const entitlements = client()
    await entitlements.load('acme')
    const features = ['export', 'reports', 'calls', 'beta', 'not-sold']
    const roleSets: unknown[] = [
      undefined,
      [],
      ['admin'],
      ['viewer'],
      ['viewer', 'analyst'],
      ['analyst', 'admin'],
      // Invalid requests: never memoized, never answered from a memo.
      'admin',
      [1],
      ['admin', null],
    ]
    let recorded = 0
    let checks = 0
    for (let i = 0; i < 6_000; i++) {
      if (i % 500 === 499) await fx.clock.advance(7_000)
      const feature = features[Math.floor(random() * features.length)]!
      if (feature === 'calls' && random() < 0.02) {
        entitlements.record('calls', 1, { subject: 'acme' })
        recorded++
        continue
      }
      const roles = roleSets[Math.floor(random() * roleSets.length)] as string[] | undefined
      const context = roles === undefined ? { subject: 'acme' } : { subject: 'acme', roles }
      const answer = entitlements.checkSync(feature, context)
      checks++
      const held = entitlements.entitlements('acme')!
      const usage = feature === 'calls' && recorded > 0 ? { usage: recorded } : {}
      const expected = decide(held, feature, { ...context, ...usage }, fx.clock.now)
      expect({ i, ...answer, source: undefined, age: undefined }).toEqual({ i, ...expected })
    }
    const counted = Object.values(entitlements.stats().decisions).reduce(
      (sum, { allowed, denied }) => sum + allowed + denied,
      0,
    )
    expect(counted).toBe(checks)
  })

  it('counts records into memoized answers: a check after record() sees the unit', async () => {
    fx.server.sell('acme', {
      plan: { id: 'team' },
      features: { calls: { cap: { limit: 3, period: 'month', used: 0, resetsAt: resetsAt() } } },
    })
    const entitlements = client()
    await entitlements.load('acme')
    for (let used = 0; used < 3; used++) {
      expect(entitlements.checkSync('calls', { subject: 'acme' })).toMatchObject({ allowed: true, used })
      entitlements.record('calls', 1, { subject: 'acme' })
    }
    expect(entitlements.checkSync('calls', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      used: 3,
    })
  })

  it('keeps no hidden second copy of tokens: without a storage, an evicted customer is fetched again', async () => {
    for (const subject of ['a', 'b', 'c'])
      fx.server.sell(subject, { plan: { id: 'team' }, features: { export: true } })
    const entitlements = client({ maxSubjects: 2 })
    for (const subject of ['a', 'b', 'c']) await entitlements.load(subject)
    expect(entitlements.stats().cached).toBe(2)
    fx.server.state.fail = 'network'
    expect(await entitlements.check('export', { subject: 'a' })).toMatchObject({
      allowed: false,
      reason: 'unavailable',
    })

    // With a storage, each customer's last token is kept there, evicted or not: a restart during an outage answers.
    fx.server.state.fail = undefined
    const storage = createMemoryStorage()
    const stored = client({ maxSubjects: 2, storage })
    for (const subject of ['a', 'b', 'c']) await stored.load(subject)
    await fx.clock.idle()
    fx.server.state.fail = 'network'
    expect(await stored.check('export', { subject: 'a' })).toMatchObject({ allowed: true, source: 'stored' })
  })

  it('renews every customer with one timer, not one each', async () => {
    const subjects = Array.from({ length: 200 }, (_, i) => `customer-${i}`)
    for (const subject of subjects)
      fx.server.sell(subject, { plan: { id: 'team' }, features: { export: true } })
    const entitlements = client()
    await Promise.all(subjects.map((subject) => entitlements.load(subject)))
    await fx.clock.idle()
    // One renewal timer and the decision summary.
    expect(fx.clock.pending()).toBe(2)
    const fetched = fx.server.requests.length
    await fx.clock.advance(50 * 60_000) // past 80% of the hour every token lives
    expect(fx.server.requests.length - fetched).toBe(200)
    expect(fx.clock.pending()).toBe(2)
  })

  it('keeps a customer checked regularly while thousands of others come and go', async () => {
    const subjects = Array.from({ length: 1000 }, (_, i) => `customer-${i}`)
    for (const subject of ['hot', ...subjects])
      fx.server.sell(subject, { plan: { id: 'team' }, features: { export: true } })
    const entitlements = client({ maxSubjects: 100 })
    await entitlements.load('hot')
    const fetchesOf = () => fx.server.requests.filter((r) => r.path.endsWith('/hot')).length
    const before = fetchesOf()
    for (const [i, subject] of subjects.entries()) {
      await entitlements.load(subject)
      if (i % 50 === 0) expect(entitlements.checkSync('export', { subject: 'hot' }).allowed).toBe(true)
    }
    expect(fetchesOf()).toBe(before)
    expect(entitlements.entitlements('hot')).toBeDefined()
    expect(entitlements.entitlements('customer-0')).toBeUndefined()
    expect(entitlements.stats().cached).toBe(100)
  })
})

describe('consumeSync(): a check and a use, with nothing to wait for', () => {
  const capped = (used = 0) => ({
    plan: { id: 'team' },
    features: {
      export: true as const,
      calls: { cap: { limit: 10, period: 'month' as const, used, resetsAt: resetsAt() } },
    },
  })

  it('holds the cap exactly, mixed with consume(), and a plain check sees it', async () => {
    fx.server.sell('acme', capped(3))
    const entitlements = client()
    expect(entitlements.consumeSync('calls', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'not_loaded',
    })
    await entitlements.load('acme')
    const answers = []
    for (let i = 0; i < 10; i++) {
      answers.push(
        i % 2 === 0
          ? entitlements.consumeSync('calls', { subject: 'acme' })
          : await entitlements.consume('calls', { subject: 'acme' }),
      )
    }
    expect(answers.filter((d) => d.allowed)).toHaveLength(7)
    expect(answers[0]).toMatchObject({ allowed: true, used: 3, remaining: 6 })
    expect(answers.at(-1)).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      used: 10,
      remaining: 0,
    })
    expect(entitlements.checkSync('calls', { subject: 'acme' })).toMatchObject({ allowed: false, used: 10 })
    expect(entitlements.consumeSync('calls', { subject: 'acme', amount: 0 })).toMatchObject({ allowed: true })
    expect(entitlements.consumeSync('export', { subject: 'acme' })).toMatchObject({ allowed: true })
    expect(entitlements.consumeSync('sso', { subject: 'acme' })).toMatchObject({ reason: 'not_in_plan' })
    expect(entitlements.stats().usage.recorded).toBe(8) // 7 consumed calls and 1 export; nothing for amount 0
    await entitlements.flush()
    expect(usageLines).toBeGreaterThan(0)
  })

  it('counts in the process when there is nowhere to send usage (a license file)', async () => {
    const issuer = await createTestIssuer({ now: () => fx.clock.now })
    const token = await issuer.issue(capped(8), { subject: 'acme' })
    const entitlements = fx.singleTenant(issuer, token)
    await entitlements.load()
    expect(entitlements.consumeSync('calls')).toMatchObject({ allowed: true, used: 8, remaining: 1 })
    expect(entitlements.consumeSync('calls', { amount: 2 })).toMatchObject({ allowed: false, used: 9 })
    expect(await entitlements.consume('calls')).toMatchObject({ allowed: true, used: 9, remaining: 0 })
    expect(entitlements.consumeSync('calls')).toMatchObject({ allowed: false, reason: 'usage_cap_reached' })
    expect(entitlements.checkSync('calls')).toMatchObject({ allowed: false, used: 10 })
  })

  it('refuses to run with a fleet store, whose count is only reached asynchronously', async () => {
    fx.server.sell('acme', capped())
    const entitlements = client({ fleet: { store: createMemoryUsageStore() } })
    await entitlements.load('acme')
    expect(() => entitlements.consumeSync('calls', { subject: 'acme' })).toThrow(TypeError)
    expect(await entitlements.consume('calls', { subject: 'acme' })).toMatchObject({ allowed: true })
  })
})

describe('snapshot(): every feature of a customer at once', () => {
  it('says not_loaded and starts a load, then answers every feature as checkSync does', async () => {
    fx.server.sell('acme', {
      plan: { id: 'team' },
      features: { export: true, reports: { roles: ['admin'] }, seats: { limit: 10 } },
      upgrades: { sso: { plan: 'business' } },
    })
    const entitlements = client()
    expect(entitlements.snapshot('acme')).toMatchObject({
      status: 'not_loaded',
      subject: 'acme',
      decisions: {},
    })
    await fx.clock.idle()
    const first = entitlements.snapshot('acme')
    expect(Object.values(first.decisions).map((d) => d.source)).toEqual(['fresh', 'fresh', 'fresh', 'fresh'])
    const snapshot = entitlements.snapshot('acme', { roles: ['admin'] })
    expect(snapshot).toMatchObject({ status: 'loaded', subject: 'acme', plan: 'team', at: fx.clock.now })
    expect(Object.keys(snapshot.decisions)).toEqual(['export', 'reports', 'seats', 'sso'])
    for (const [feature, decision] of Object.entries(snapshot.decisions))
      expect(decision).toEqual(entitlements.checkSync(feature, { subject: 'acme', roles: ['admin'] }))
    expect(snapshot.decisions.sso).toMatchObject({ allowed: false, reason: 'not_in_plan' })
    expect(entitlements.snapshot('acme').decisions.reports).toMatchObject({ reason: 'role_missing' })
    // A customer with no license: said once it is known.
    expect(entitlements.snapshot('nobody').status).toBe('not_loaded')
    await fx.clock.idle()
    expect(entitlements.snapshot('nobody')).toMatchObject({ status: 'not_in_plan', decisions: {} })
  })
})
