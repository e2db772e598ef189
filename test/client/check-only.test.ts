import { describe, expect, it } from 'vitest'
import type { EntitlementClaim } from '../../src/core/claims.js'
import { createEntitlements, createMemoryStorage, metering } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { NOW, NOW_SEC } from '../helpers.js'
import { clientFixture } from './fixture.js'
import { SERVER } from './harness.js'
import { fakeUsageIngest } from './usage-ingest.js'

// A client made without the metering plug-in: what a browser app that only checks makes. Its checks answer as a
// metering client's do from the same token; what would count usage refuses with a TypeError that names the fix, and
// nothing is ever sent to the usage endpoint.

const RESETS_AT_SEC = NOW_SEC + 10 * 86_400
const PLAN: Partial<EntitlementClaim> = {
  plan: { id: 'ai' },
  features: {
    export: true,
    'api-calls': { cap: { limit: 10, period: 'month', used: 7, resetsAt: RESETS_AT_SEC } },
    'ai-completion': true,
  },
  credits: {
    'ai-credits': {
      grants: [{ id: 'pack', remaining: 12, category: 'paid' }],
      asOf: NOW_SEC,
      spent: 3,
      costs: { 'ai-completion': { amount: 5 } },
    },
  },
}

const fx = clientFixture()
const subject = 'acme'
const FIX = /needs metering: import \{ metering \} from 'entitle' and pass it/

describe('a client made without metering', () => {
  it('answers checks of caps and credits from the token, as a metering client does before it counts anything', async () => {
    fx.server.sell(subject, PLAN)
    const checking = fx.client({ metering: undefined })
    const meteringToo = fx.client()
    for (const feature of ['export', 'api-calls', 'ai-completion']) {
      const { source: _a, age: _b, ...plain } = await checking.check(feature, { subject, amount: 1 })
      const { source: _c, age: _d, ...metered } = await meteringToo.check(feature, { subject, amount: 1 })
      expect(plain, feature).toEqual(metered)
    }
    expect(checking.checkSync('api-calls', { subject, amount: 4 })).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      used: 7,
      remaining: 3,
    })
    expect(checking.checkSync('ai-completion', { subject }).credits).toMatchObject({ cost: 5, available: 12 })
    // Balances and snapshots read the token's snapshot: nothing was spent or held here.
    expect(checking.balance('ai-credits', { subject })).toMatchObject({
      available: 12,
      spentSinceSnapshot: 0,
      held: 0,
    })
    expect(checking.snapshot(subject).credits['ai-credits']).toEqual(
      checking.balance('ai-credits', { subject }),
    )
  })

  it('refuses record(), consume(), consumeSync() and reserve() with a TypeError that names the plug-in, counting nothing', async () => {
    fx.server.sell(subject, PLAN)
    const ingest = fakeUsageIngest(fx.msw, fx.clock)
    const checking = fx.client({ metering: undefined })
    await checking.load(subject)
    expect(() => checking.record('api-calls', 1, { subject })).toThrow(TypeError)
    expect(() => checking.record('api-calls', 1, { subject })).toThrow(
      new RegExp(`^record\\(\\) ${FIX.source}`),
    )
    expect(() => checking.consumeSync('api-calls', { subject })).toThrow(/^consumeSync\(\) needs metering/)
    await expect(checking.consume('api-calls', { subject })).rejects.toThrow(/^consume\(\) needs metering/)
    await expect(checking.reserve('ai-completion', { subject })).rejects.toThrow(
      /^reserve\(\) needs metering/,
    )
    // Nothing was counted: the next check sees what the token says, and there is nothing to send or set aside.
    expect(checking.checkSync('api-calls', { subject })).toMatchObject({ allowed: true, used: 7 })
    expect(await checking.flush()).toEqual({ sent: 0, pending: 0 })
    expect(checking.setAsideUsage()).toEqual([])
    expect(checking.resendSetAsideUsage()).toBe(0)
    expect(checking.stats().usage).toMatchObject({ recorded: 0, sent: 0 })
    expect(await checking.close()).toEqual({ sent: 0, persisted: 0, dropped: 0 })
    expect(ingest.received).toEqual([])
  })

  it('leaves usage a metering run journaled in storage for the next client with metering, untouched', async () => {
    fx.server.sell(subject, PLAN)
    const ingest = fakeUsageIngest(fx.msw, fx.clock)
    const storage = createMemoryStorage()
    const metered = fx.client({ storage })
    await metered.load(subject)
    ingest.script.push('hang')
    metered.record('api-calls', 2, { subject })
    const closing = metered.close({ deadlineMs: 2000 })
    await fx.clock.advance(2000)
    expect(await closing).toEqual({ sent: 0, persisted: 1, dropped: 0 })
    // A release that only checks runs on the same storage: it neither sends nor drops what it finds there.
    const checking = fx.client({ storage, metering: undefined })
    expect((await checking.check('api-calls', { subject })).allowed).toBe(true)
    expect(await checking.close()).toEqual({ sent: 0, persisted: 0, dropped: 0 })
    expect(ingest.total(subject, 'api-calls')).toBe(0)
    // The next release that meters sends it, once.
    const again = fx.client({ storage })
    await again.flush()
    expect(ingest.total(subject, 'api-calls')).toBe(2)
  })

  it('refuses usage and fleet options given without the plug-in, and anything else passed as it', async () => {
    const issuer = await createTestIssuer({ now: () => NOW, issuer: SERVER, audience: 'app' })
    const token = await issuer.issue(PLAN)
    const base = { token, ...issuer.verifyOptions, platform: fx.clock.platform }
    const store = { consume: async () => ({ allowed: true, used: 0 }) }
    expect(() => createEntitlements({ ...base, usage: { url: SERVER } })).toThrow(
      /^usage is for metering: import \{ metering \} from 'entitle' and pass it too/,
    )
    expect(() => createEntitlements({ ...base, fleet: { store } } as never)).toThrow(/^fleet is for metering/)
    expect(() => createEntitlements({ ...base, metering: { name: 'metering' } } as never)).toThrow(
      /^metering must be the metering plug-in/,
    )
    // With it, the same options make a client that counts.
    const counting = createEntitlements({ ...base, usage: { url: SERVER }, metering })
    expect((await counting.check('api-calls')).used).toBe(7)
    await counting.close({ deadlineMs: 0 })
  })
})
