import { describe, expect, it } from 'vitest'
import { compareBurnOrder, nextExpiry, planBurn, spendableAt } from '../../src/core/credits.js'
import {
  createEntitlements,
  createEntitlementVerifier,
  decide,
  type EntitlementClaim,
  entitlementTokenClaimsSchema,
  metering,
} from '../../src/index.js'
import { formatVersionFor } from '../../src/protocol/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { manualPlatform } from '../client/harness.js'
import { frozen, NOW, NOW_SEC } from '../helpers.js'

// An AI product: a monthly allowance, a promotional grant, a paid pack; a completion costs 5 credits, tokens 1 per 1 000.
const HOUR = 3600
function credits(overrides: Record<string, unknown> = {}): NonNullable<EntitlementClaim['credits']> {
  return {
    'ai-credits': {
      grants: [
        { id: 'pack', remaining: 500, category: 'paid' },
        { id: 'allowance', remaining: 100, category: 'allowance', expiresAt: NOW_SEC + 10 * HOUR },
        { id: 'promo', remaining: 50, category: 'promotional', expiresAt: NOW_SEC + 10 * HOUR },
        { id: 'early', remaining: 20, category: 'paid', priority: 0, expiresAt: NOW_SEC + HOUR },
      ],
      asOf: NOW_SEC,
      spent: 1000,
      costs: { 'ai-completion': { amount: 5 }, tokens: { amount: 1, per: 1000 } },
      ...overrides,
    },
  }
}
const features = { 'ai-completion': true, export: true } satisfies EntitlementClaim['features']

async function issued(ent: Partial<EntitlementClaim> = {}) {
  const issuer = await createTestIssuer({ now: frozen })
  const token = await issuer.issue(
    { plan: { id: 'ai' }, features, credits: credits(), ...ent },
    { expiresInSec: 30 * 86_400 },
  )
  return { issuer, token }
}

describe('credits: the burn order', () => {
  it('burns by priority, then earliest expiry (none last), then promotional before allowance before paid, then start, then id', () => {
    const grants = [
      { id: 'paid-forever', remaining: 10 },
      { id: 'paid-soon', remaining: 10, expiresAt: 200 },
      { id: 'promo-soon', remaining: 10, expiresAt: 200, category: 'promotional' as const },
      { id: 'allow-soon', remaining: 10, expiresAt: 200, category: 'allowance' as const },
      { id: 'late-start', remaining: 10, expiresAt: 200, category: 'promotional' as const, startsAt: 50 },
      { id: 'b-low', remaining: 10, priority: 1 },
      { id: 'a-first', remaining: 10, expiresAt: 300, priority: 0 },
    ]
    const order = [...grants].sort(compareBurnOrder).map((grant) => grant.id)
    expect(order).toEqual([
      'promo-soon',
      'late-start',
      'allow-soon',
      'paid-soon',
      'a-first',
      'paid-forever',
      'b-low',
    ])
    // A burn spanning grants takes from each in that order, only from those spendable at that moment.
    expect(planBurn(grants, 25, 100)).toEqual({
      takes: [
        { id: 'promo-soon', amount: 10 },
        { id: 'late-start', amount: 10 },
        { id: 'allow-soon', amount: 5 },
      ],
      short: 0,
    })
    expect(planBurn(grants, 25, 10).takes[1]).toEqual({ id: 'allow-soon', amount: 10 })
    // At its expiry a grant is worth nothing (the end is exclusive): no sweep to wait for.
    expect(spendableAt(grants, 199)).toBe(70)
    expect(spendableAt(grants, 200)).toBe(30)
    expect(planBurn(grants, 100, 250)).toEqual({
      takes: [
        { id: 'a-first', amount: 10 },
        { id: 'paid-forever', amount: 10 },
        { id: 'b-low', amount: 10 },
      ],
      short: 70,
    })
    expect(nextExpiry(grants, 100)).toBe(200)
    expect(nextExpiry(grants, 250)).toBe(300)
  })

  it('a token with credits is format v2; one without keeps v1; v1 cannot carry credits', () => {
    expect(formatVersionFor({ features })).toBe(1)
    expect(formatVersionFor({ features, credits: credits() })).toBe(2)
    const claims = { iss: 'i', sub: 'acme', aud: 'app', iat: 1, exp: 2, jti: 't' }
    const v1 = entitlementTokenClaimsSchema.safeParse({
      ...claims,
      ent: { v: 1, plan: { id: 'ai' }, features, credits: credits() },
    })
    expect(v1.success).toBe(false)
  })
})

describe('credits: decisions', () => {
  it('a costed feature is allowed while the balance covers it, and says what it costs and what is left', async () => {
    const { issuer, token } = await issued()
    const entitlements = await createEntitlementVerifier(issuer.verifyOptions).verify(token)
    const decision = decide(entitlements, 'ai-completion', { amount: 2 }, NOW)
    expect(decision).toMatchObject({ allowed: true, reason: 'granted' })
    expect(decision.credits).toEqual({
      type: 'ai-credits',
      cost: 10,
      available: 670,
      overdraft: undefined,
      nextExpiry: NOW + HOUR * 1000,
      asOf: NOW,
    })
    // A metric that costs credits and is no feature of the plan: its credits alone decide.
    expect(decide(entitlements, 'tokens', { amount: 670_000 }, NOW)).toMatchObject({ allowed: true })
    expect(decide(entitlements, 'tokens', { amount: 670_001 }, NOW)).toMatchObject({
      allowed: false,
      reason: 'credits_exhausted',
    })
    // Features that cost nothing carry no credits.
    expect(decide(entitlements, 'export', {}, NOW).credits).toBeUndefined()
  })

  it('a grant expiring while the server is down: allowed one millisecond before its end, denied at it', async () => {
    const only = {
      'ai-credits': {
        ...credits()['ai-credits']!,
        grants: [{ id: 'g', remaining: 5, expiresAt: NOW_SEC + HOUR }],
      },
    }
    const { issuer, token } = await issued({ credits: only })
    const entitlements = await createEntitlementVerifier(issuer.verifyOptions).verify(token)
    const end = NOW + HOUR * 1000
    expect(decide(entitlements, 'ai-completion', {}, end - 1).allowed).toBe(true)
    expect(decide(entitlements, 'ai-completion', {}, end)).toMatchObject({
      allowed: false,
      reason: 'credits_exhausted',
    })
  })

  it('an overdraft allows down to its bound, flagged; past it denies', async () => {
    const only = {
      'ai-credits': { ...credits()['ai-credits']!, grants: [{ id: 'g', remaining: 7 }], overdraft: 8 },
    }
    const { issuer, token } = await issued({ credits: only })
    const entitlements = await createEntitlementVerifier(issuer.verifyOptions).verify(token)
    expect(decide(entitlements, 'ai-completion', {}, NOW)).toMatchObject({ allowed: true, reason: 'granted' })
    const into = decide(entitlements, 'ai-completion', { amount: 3 }, NOW)
    expect(into).toMatchObject({ allowed: true, reason: 'overdraft' })
    expect(into.credits?.overdraft).toBe(8)
    expect(decide(entitlements, 'ai-completion', { amount: 4 }, NOW)).toMatchObject({
      allowed: false,
      reason: 'credits_exhausted',
    })
  })
})

describe('credits: the client', () => {
  it('consumeSync burns against the snapshot, across features and metrics of one type, and denies at zero counting nothing', async () => {
    const only = { 'ai-credits': { ...credits()['ai-credits']!, grants: [{ id: 'g', remaining: 12 }] } }
    const { issuer, token } = await issued({ credits: only })
    const clock = manualPlatform()
    const client = createEntitlements({ metering, token, ...issuer.verifyOptions, platform: clock.platform })
    await client.load()
    expect(client.consumeSync('ai-completion')).toMatchObject({ allowed: true })
    expect(client.consumeSync('ai-completion')).toMatchObject({ allowed: true })
    const third = client.consumeSync('ai-completion')
    expect(third).toMatchObject({ allowed: false, reason: 'credits_exhausted' })
    expect(third.credits?.available).toBe(2)
    expect(client.consumeSync('tokens', { amount: 2000 })).toMatchObject({ allowed: true })
    expect(client.checkSync('tokens', { amount: 1 }).credits?.available).toBe(0)
    expect(client.checkSync('ai-completion')).toMatchObject({ allowed: false, reason: 'credits_exhausted' })
    await client.close()
  })

  it('reserve() holds an estimate; commit pays what was used and frees the rest; release frees all; a hold ends by itself', async () => {
    const only = { 'ai-credits': { ...credits()['ai-credits']!, grants: [{ id: 'g', remaining: 500 }] } }
    const { issuer, token } = await issued({ credits: only })
    const clock = manualPlatform()
    const client = createEntitlements({ metering, token, ...issuer.verifyOptions, platform: clock.platform })
    await client.load()
    // 8 000 tokens held: 8 credits.
    const first = await client.reserve('tokens', { amount: 8000, ttlMs: 60_000 })
    expect(first.reserved).toBe(true)
    expect(client.balance('ai-credits')).toMatchObject({ available: 492, held: 8, spentSinceSnapshot: 0 })
    await first.hold!.commit(5200)
    expect(client.balance('ai-credits')).toMatchObject({ available: 494.8, held: 0, spentSinceSnapshot: 5.2 })
    // Committing twice pays once; more than was held is refused.
    await first.hold!.commit(5200)
    expect(client.balance('ai-credits')?.available).toBe(494.8)
    const second = await client.reserve('ai-completion', { amount: 10 })
    await expect(second.hold!.commit(11)).rejects.toThrow(TypeError)
    await second.hold!.release()
    expect(client.balance('ai-credits')).toMatchObject({ available: 494.8, held: 0 })
    // A hold nobody ends returns at its ttl, not before.
    const third = await client.reserve('ai-completion', { amount: 90, ttlMs: 5_000 })
    expect(third.hold!.credits).toBe(450)
    expect((await client.reserve('ai-completion', { amount: 9 })).decision).toMatchObject({
      allowed: false,
      reason: 'credits_exhausted',
    })
    await clock.advance(4_999)
    expect(client.balance('ai-credits')?.held).toBe(450)
    await clock.advance(1)
    expect(client.balance('ai-credits')).toMatchObject({ available: 494.8, held: 0 })
    expect((await client.reserve('ai-completion', { amount: 9 })).reserved).toBe(true)
    // Not a costed feature: a programming error, said at once.
    await expect(client.reserve('export')).rejects.toThrow(/costs none/)
    await client.close()
  })

  it('balance() shows each grant after the local spend, in the burn order, and the next expiry', async () => {
    const { issuer, token } = await issued()
    const clock = manualPlatform()
    const client = createEntitlements({ metering, token, ...issuer.verifyOptions, platform: clock.platform })
    await client.load()
    expect(client.balance('nope')).toBeUndefined()
    // 670 spendable: early 20 (priority 0, soonest expiry), promo 50, allowance 100, pack 500.
    for (let i = 0; i < 10; i++) client.consumeSync('ai-completion')
    const view = client.balance('ai-credits')!
    expect(view.available).toBe(620)
    expect(view.grants.map((grant) => [grant.id, grant.remaining])).toEqual([
      ['early', 0],
      ['promo', 20],
      ['allowance', 100],
      ['pack', 500],
    ])
    expect(view.nextExpiry).toBe(NOW + 10 * HOUR * 1000)
    expect(view.age).toBe(0)
    await client.close()
  })

  it('the offline bound: past a snapshot older than it says, spending since it stops at the bound', async () => {
    const bounded = { 'ai-credits': { ...credits()['ai-credits']!, offline: { after: 3600, spend: 20 } } }
    const { issuer, token } = await issued({ credits: bounded })
    const clock = manualPlatform()
    const client = createEntitlements({ metering, token, ...issuer.verifyOptions, platform: clock.platform })
    await client.load()
    // Everything spent since the snapshot counts toward the bound: 15 before it applies, 5 more after.
    for (let i = 0; i < 3; i++) expect(client.consumeSync('ai-completion').allowed).toBe(true)
    await clock.advance(3600 * 1000 + 1)
    expect(client.consumeSync('ai-completion')).toMatchObject({ allowed: true })
    const denied = client.consumeSync('ai-completion')
    expect(denied).toMatchObject({ allowed: false, reason: 'credits_offline' })
    expect(client.balance('ai-credits')?.offlineBound).toEqual({
      afterMs: 3_600_000,
      spend: 20,
      offline: true,
    })
    await client.close()
  })
})
