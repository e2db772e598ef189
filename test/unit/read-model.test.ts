import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import type { FeatureClaim } from '../../src/core/claims.js'
import type { Feature } from '../../src/core/entitlements.js'
import { createEntitlementVerifier, decide, diffEntitlements, featureTerm } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { frozen, NOW, seeded } from '../helpers.js'

const resetsAt = Math.floor(NOW / 1000) + 86_400

async function setup() {
  const issuer = await createTestIssuer({ now: frozen })
  const verifier = createEntitlementVerifier(issuer.verifyOptions)
  const plan = (used: number, roles = ['admin']) => ({
    plan: { id: 'team', name: 'Team' },
    features: {
      export: true as const,
      seats: { limit: 10, upgrade: { plan: 'business', url: 'https://vendor.example/pricing' } },
      calls: { cap: { limit: 1000, period: 'month' as const, used, resetsAt }, roles },
    },
    upgrades: { sso: { plan: 'business' } },
  })
  const load = async (subject: string, used: number, roles?: string[]) =>
    verifier.verify(await issuer.issue(plan(used, roles), { subject }))
  return { load }
}

describe('the read model a cached customer costs', () => {
  it('shares what is the same for everyone on a plan, and keeps what is theirs apart', async () => {
    const { load } = await setup()
    const acme = await load('acme', 10)
    const globex = await load('globex', 20)
    expect(globex.features.get('export')).toBe(acme.features.get('export'))
    expect(globex.features.get('seats')).toBe(acme.features.get('seats'))
    expect(globex.plan).toBe(acme.plan)
    expect(globex.upgrades).toBe(acme.upgrades)
    // A metered cap is the plan's; what each customer used of it is theirs, beside it: one map of features for both.
    expect(globex.features).toBe(acme.features)
    expect(globex.usage).not.toBe(acme.usage)
    expect(acme.usage.get('calls')).toEqual({ used: 10, resetsAt: resetsAt * 1000, asOf: undefined })
    expect(globex.usage.get('calls')?.used).toBe(20)
    expect([...acme.usage.keys()]).toEqual(['calls'])
    // One feature, each customer's own usage decides: a customer at the cap is refused, the others are not.
    const hooli = await load('hooli', 1000)
    expect(hooli.features.get('calls')).toBe(acme.features.get('calls'))
    expect(decide(hooli, 'calls', { roles: ['admin'] }, NOW).reason).toBe('usage_cap_reached')
    expect(decide(globex, 'calls', { roles: ['admin'] }, NOW)).toMatchObject({ allowed: true, used: 20 })
    expect(globex.features.get('calls')?.roles).toBe(acme.features.get('calls')?.roles)
    // Equal content only: other roles are other objects, and decide apart.
    const initech = await load('initech', 10, ['owner'])
    expect(initech.features.get('calls')?.roles).toEqual(['owner'])
    expect(decide(initech, 'calls', { roles: ['admin'] }, NOW).reason).toBe('role_missing')
    expect(decide(acme, 'calls', { roles: ['admin'] }, NOW).allowed).toBe(true)
  })

  it('is frozen all the way down, so sharing cannot let one customer change another', async () => {
    const { load } = await setup()
    const acme = await load('acme', 10)
    const globex = await load('globex', 10)
    const seats = acme.features.get('seats') as Feature
    expect(Object.isFrozen(seats)).toBe(true)
    expect(Object.isFrozen(seats.upgrade)).toBe(true)
    expect(Object.isFrozen(acme.plan)).toBe(true)
    expect(Object.isFrozen(acme.features.get('calls')?.roles)).toBe(true)
    expect(() => {
      ;(seats as { limit: number }).limit = 1000
    }).toThrow(TypeError)
    const roles = acme.features.get('calls')!.roles as string[]
    expect(() => roles.push('guest')).toThrow(TypeError)
    expect('set' in acme.features).toBe(false)
    expect(globex.features.get('seats')?.limit).toBe(10)
    // What is the customer's own is frozen too: its term, its usage map and each snapshot in it.
    expect(Object.isFrozen(acme.term)).toBe(true)
    expect(Object.isFrozen(acme.features.get('calls')!.cap)).toBe(true)
    const snapshot = acme.usage.get('calls') as { used: number }
    expect(Object.isFrozen(snapshot)).toBe(true)
    expect(() => {
      snapshot.used = 0
    }).toThrow(TypeError)
    expect('set' in acme.usage).toBe(false)
    expect(globex.usage.get('calls')?.used).toBe(10)
  })

  it('answers as a ReadonlyMap does, and no name reaches Object.prototype', async () => {
    const { load } = await setup()
    const { features, upgrades } = await load('acme', 0)
    const map = new Map(features)
    expect(features.size).toBe(3)
    expect([...features.keys()]).toEqual(['export', 'seats', 'calls'])
    expect([...features.values()]).toEqual([...map.values()])
    expect([...features.entries()]).toEqual([...map.entries()])
    expect([...features]).toEqual([...map])
    const seen: string[] = []
    features.forEach((feature, name, self) => {
      expect(self).toBe(features)
      expect(feature.name).toBe(name)
      seen.push(name)
    })
    expect(seen).toEqual(['export', 'seats', 'calls'])
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'size']) {
      expect(features.has(name)).toBe(false)
      expect(features.get(name)).toBeUndefined()
    }
    expect(upgrades.get('sso')).toEqual({ plan: 'business' })
    expect(upgrades.get('constructor')).toBeUndefined()
  })

  it('shows what it grants when logged, inspected or written as JSON (its fields are private)', async () => {
    const { load } = await setup()
    const entitlements = await load('acme', 0)
    const shown = inspect(entitlements.features, { depth: 4 })
    expect(shown).toMatch(/^FrozenMap\(3\) \{/)
    for (const name of ["'export'", "'seats'", "'calls'", 'limit: 10']) expect(shown).toContain(name)
    expect(inspect({ deep: { deeper: entitlements.features } }, { depth: 1 })).toContain('[FrozenMap(3)]')
    const json = JSON.parse(JSON.stringify(entitlements))
    expect(Object.keys(json.features)).toEqual(['export', 'seats', 'calls'])
    expect(json.features.seats).toMatchObject({ name: 'seats', limit: 10 })
    expect(json.upgrades).toEqual({ sso: { plan: 'business' } })
  })
})

describe('what the read model shares, over generated claims and defaults', () => {
  it('shares a feature only between equal claims, whatever order plans that differ by one value come in', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const verifier = createEntitlementVerifier(issuer.verifyOptions)
    const random = seeded(31)
    const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!
    // Claims that differ in one value, one key, a nested value, the order of an array, or its length.
    const seats: FeatureClaim[] = [
      { limit: 10 },
      { limit: 11 },
      { limit: 10, soft: true },
      { limit: 10, upgrade: { plan: 'business' } },
      { limit: 10, upgrade: { plan: 'business', url: 'https://vendor.example/a' } },
      { limit: 10, upgrade: { plan: 'business', url: 'https://vendor.example/b' } },
      { limit: 10, roles: ['admin', 'owner'] },
      { limit: 10, roles: ['owner', 'admin'] },
      { limit: 10, roles: ['owner'] },
    ]
    const names = [
      ['export', 'seats'],
      ['seats', 'export'],
      ['export', 'seats', 'sso'],
    ]
    const seen: Array<{ claim: unknown; feature: Feature }> = []
    for (let i = 0; i < 120; i++) {
      const claim = pick(seats)
      const order = pick(names)
      const features: Record<string, FeatureClaim | true> = Object.fromEntries(
        order.map((name) => [name, name === 'seats' ? claim : true]),
      )
      const entitlements = await verifier.verify(
        await issuer.issue({ plan: { id: 'team' }, features }, { subject: `customer-${i}` }),
      )
      const feature = entitlements.features.get('seats') as Feature
      expect(feature.limit).toBe(claim.limit)
      expect(feature.soft).toBe(claim.soft === true)
      expect(feature.upgrade).toEqual(claim.upgrade)
      expect(feature.roles).toEqual(claim.roles)
      // The layout (found by the number of names) is this token's, in its order.
      expect([...entitlements.features.keys()]).toEqual(order)
      for (const earlier of seen) if (earlier.feature === feature) expect(earlier.claim).toEqual(claim)
      seen.push({ claim, feature })
    }
    // Equal claims did share: one object per distinct claim, whatever came between.
    const distinct = new Set(seen.map(({ feature }) => feature))
    expect(distinct.size).toBe(new Set(seen.map(({ claim }) => JSON.stringify(claim))).size)
  })

  it('tells a list from one that starts the same and goes on, in either order', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const verifier = createEntitlementVerifier(issuer.verifyOptions)
    // Each token compared with the one before it on the plan: a list that is the last one's start, or goes past it.
    const lists = [['owner'], ['owner', 'admin'], ['owner'], [], ['owner'], ['owner', 'admin', 'billing']]
    for (const [i, roles] of lists.entries()) {
      const thresholds = roles.length === 0 ? undefined : roles.map((_, n) => 50 + n)
      const features = { seats: { limit: 10, roles, ...(thresholds && { thresholds }) } }
      const entitlements = await verifier.verify(
        await issuer.issue({ plan: { id: 'prefix' }, features }, { subject: `customer-${i}` }),
      )
      const feature = entitlements.features.get('seats') as Feature
      expect(feature.roles).toEqual(roles)
      expect(feature.thresholds).toEqual(thresholds)
    }
  })

  it('shares a feature only within equal token-wide defaults, on one plan, whatever order they come in', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const verifier = createEntitlementVerifier(issuer.verifyOptions)
    const random = seeded(47)
    const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!
    const expiresAt = Math.floor(NOW / 1000) + 86_400 * 365
    // What every feature of a token inherits: each differs from the first in one value, and all are on plan "team".
    const pool = (seats: number) => ({ editors: { seats, holder: 'user' as const, ttl: 600, heartbeat: 60 } })
    const inherited: Array<{
      term?: { expiresAt: number; graceEndsAt?: number }
      roles?: string[]
      upgrade?: { plan: string }
      regions?: { allow?: string[]; deny?: string[] }
      pools?: ReturnType<typeof pool>
      pool?: string
    }> = [
      {},
      { term: { expiresAt } },
      { term: { expiresAt: expiresAt + 1 } },
      { term: { expiresAt, graceEndsAt: expiresAt + 86_400 } },
      { roles: ['admin'] },
      { roles: ['owner'] },
      { upgrade: { plan: 'business' } },
      { regions: { allow: ['de', 'fr'] } },
      { regions: { deny: ['de', 'fr'] } },
      { pools: pool(3), pool: 'editors' },
      { pools: pool(4), pool: 'editors' },
    ]
    const seen: Array<{ defaults: unknown; feature: Feature }> = []
    for (let i = 0; i < 120; i++) {
      const defaults = pick(inherited)
      const entitlements = await verifier.verify(
        await issuer.issue(
          { plan: { id: 'team' }, features: { export: true, seats: { limit: 10 } }, ...defaults },
          { subject: `customer-${i}` },
        ),
      )
      const feature = entitlements.features.get('export') as Feature
      const { term, regions } = defaults
      const ms = (seconds: number | undefined) => (seconds === undefined ? undefined : seconds * 1000)
      expect(featureTerm(entitlements, feature).expiresAt).toBe(ms(term?.expiresAt))
      expect(featureTerm(entitlements, feature).graceEndsAt).toBe(ms(term?.graceEndsAt))
      expect(feature.term).toBeUndefined()
      expect(feature.roles).toEqual(defaults.roles)
      expect(feature.upgrade).toEqual(defaults.upgrade)
      expect(feature.regions?.allow).toEqual(regions?.allow && ['DE', 'FR'])
      expect(feature.regions?.deny).toEqual(regions?.deny && ['DE', 'FR'])
      expect(feature.pool?.seats).toBe(defaults.pools?.editors.seats)
      // The term is the customer's, not the feature's: features differing only by it are one.
      const { term: _term, ...shaping } = defaults
      for (const earlier of seen) if (earlier.feature === feature) expect(earlier.defaults).toEqual(shaping)
      seen.push({ defaults: shaping, feature })
    }
    // Equal defaults did share: one object per distinct set, whatever came between.
    expect(new Set(seen.map(({ feature }) => feature)).size).toBe(
      new Set(seen.map(({ defaults }) => JSON.stringify(defaults))).size,
    )
  })
})

describe("the read model's customer parts: the license's term and the caps' usage", () => {
  it('shares every feature without usage between customers whose terms end on their own second', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const verifier = createEntitlementVerifier(issuer.verifyOptions)
    const year = Math.floor(NOW / 1000) + 365 * 86_400
    // As a license server signs them: each order's term ends a year after it, to the second; one feature ends with
    // its own trial, the rest of its term the customer's.
    const load = (subject: string, expiresAt: number) =>
      issuer
        .issue(
          {
            plan: { id: 'team' },
            features: { export: true, seats: { limit: 10 }, beta: { term: { trialEndsAt: year - 86_400 } } },
            term: { expiresAt, graceEndsAt: expiresAt + 7 * 86_400 },
          },
          { subject, expiresInSec: 2 * 365 * 86_400 },
        )
        .then((token) => verifier.verify(token))
    const acme = await load('acme', year - 3600)
    const globex = await load('globex', year + 17)
    for (const name of ['export', 'seats', 'beta'])
      expect(globex.features.get(name)).toBe(acme.features.get(name))
    expect(acme.term.expiresAt).toBe((year - 3600) * 1000)
    expect(globex.term.graceEndsAt).toBe((year + 17 + 7 * 86_400) * 1000)
    const beta = featureTerm(globex, globex.features.get('beta')!)
    expect(beta).toEqual({
      expiresAt: (year + 17) * 1000,
      graceEndsAt: (year + 17 + 7 * 86_400) * 1000,
      trialEndsAt: (year - 86_400) * 1000,
    })
    // Each customer's own term decides: between the two ends one is in its grace period, the other granted.
    const between = year * 1000
    expect(decide(acme, 'export', {}, between).reason).toBe('grace_period')
    expect(decide(globex, 'export', {}, between).reason).toBe('granted')
    expect(decide(acme, 'export', {}, (year - 3600 + 7 * 86_400) * 1000).reason).toBe('expired')
    expect(decide(globex, 'beta', {}, between).reason).toBe('trial_ended')
    expect(decide(globex, 'beta', {}, between - 2 * 86_400_000).reason).toBe('trial')
  })

  it('tells a renewal as a term change of each feature that inherits it, and new usage as no change', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const verifier = createEntitlementVerifier(issuer.verifyOptions)
    const year = Math.floor(NOW / 1000) + 365 * 86_400
    const own = { expiresAt: year + 30 * 86_400, graceEndsAt: year + 40 * 86_400 }
    const load = (expiresAt: number, used: number) =>
      issuer
        .issue(
          {
            plan: { id: 'team' },
            features: {
              export: true,
              calls: { cap: { limit: 100, period: 'month', used, resetsAt } },
              // Its own term in full: the license's renewal does not move it.
              legacy: { term: own },
            },
            term: { expiresAt, graceEndsAt: expiresAt + 7 * 86_400 },
          },
          { subject: 'acme' },
        )
        .then((token) => verifier.verify(token))
    const before = await load(year, 10)
    const used = await load(year, 60)
    const renewed = await load(year + 365 * 86_400, 60)
    expect(used.features).toBe(before.features)
    expect(diffEntitlements(before, used)).toEqual([])
    const end = (year + 7 * 86_400) * 1000
    const next = end + 365 * 86_400_000
    expect(diffEntitlements(used, renewed)).toEqual([
      { type: 'term_changed', feature: 'export', from: end, to: next },
      { type: 'term_changed', feature: 'calls', from: end, to: next },
    ])
    expect(featureTerm(renewed, renewed.features.get('legacy')!).graceEndsAt).toBe(own.graceEndsAt * 1000)
  })
})
