import { describe, expect, it } from 'vitest'
import type { DecisionReason } from '../../src/index.js'
import { decide } from '../../src/index.js'
import { DAY_SEC, entitlementsOf, NOW, NOW_SEC } from '../helpers.js'

const HOUR_MS = 3_600_000

describe('decide: plan, add-ons and feature flags', () => {
  const ent = entitlementsOf({
    plan: { id: 'pro', tier: 2 },
    addons: ['sso'],
    features: {
      export: true,
      sso: { addon: 'sso' },
      audit: { addon: 'compliance' },
      beta: { enabled: false },
    },
    upgrade: { url: 'https://example.com/pricing' },
    upgrades: { analytics: { plan: 'enterprise', url: 'https://example.com/upgrade/enterprise' } },
  })

  it('grants a boolean feature in the plan', () => {
    expect(decide(ent, 'export', {}, NOW)).toEqual({
      allowed: true,
      feature: 'export',
      reason: 'granted',
      subject: 'customer-1',
      plan: 'pro',
      limit: undefined,
      used: undefined,
      remaining: undefined,
      resetsAt: undefined,
      expiresAt: undefined,
      upgrade: undefined,
      error: undefined,
    })
  })

  it('grants a feature whose add-on was bought', () => {
    expect(decide(ent, 'sso', {}, NOW).allowed).toBe(true)
  })

  it('denies a feature whose add-on is not in the token', () => {
    expect(decide(ent, 'audit', {}, NOW)).toMatchObject({ allowed: false, reason: 'not_in_plan' })
  })

  it('denies a feature switched off with enabled: false', () => {
    expect(decide(ent, 'beta', {}, NOW)).toMatchObject({ allowed: false, reason: 'not_in_plan' })
  })

  it('denies an unknown feature name instead of granting it, with the specific upgrade hint', () => {
    expect(decide(ent, 'analytics', {}, NOW)).toMatchObject({
      allowed: false,
      reason: 'not_in_plan',
      plan: 'pro',
      upgrade: { plan: 'enterprise', url: 'https://example.com/upgrade/enterprise' },
    })
  })

  it('falls back to the token-wide upgrade hint', () => {
    expect(decide(ent, 'nothing-like-this', {}, NOW).upgrade).toEqual({ url: 'https://example.com/pricing' })
  })

  it('is case-sensitive about feature names', () => {
    expect(decide(ent, 'Export', {}, NOW).reason).toBe('not_in_plan')
  })
})

describe('decide: numeric limits', () => {
  const ent = entitlementsOf({ features: { seats: { limit: 10 }, projects: { limit: 0 } } })

  it('allows while usage + amount stays within the limit', () => {
    expect(decide(ent, 'seats', { usage: 9, amount: 1 }, NOW)).toMatchObject({
      allowed: true,
      reason: 'granted',
      limit: 10,
      used: 9,
      remaining: 1,
    })
  })

  it('denies when usage + amount would pass the limit, with the numbers and the upgrade hint', () => {
    const decision = decide(ent, 'seats', { usage: 10 }, NOW)
    expect(decision).toMatchObject({
      allowed: false,
      reason: 'limit_exceeded',
      limit: 10,
      used: 10,
      remaining: 0,
    })
  })

  it('asks for one unit by default', () => {
    expect(decide(ent, 'seats', { usage: 10 }, NOW).allowed).toBe(false)
    expect(decide(ent, 'seats', {}, NOW)).toMatchObject({ allowed: true, used: 0, remaining: 10 })
  })

  it('takes an amount of several units at once', () => {
    expect(decide(ent, 'seats', { usage: 5, amount: 5 }, NOW).allowed).toBe(true)
    expect(decide(ent, 'seats', { usage: 5, amount: 6 }, NOW).reason).toBe('limit_exceeded')
  })

  it('treats a limit of zero as nothing allowed', () => {
    expect(decide(ent, 'projects', {}, NOW).reason).toBe('limit_exceeded')
  })

  it('reports remaining as zero, never negative, when already over the limit', () => {
    expect(decide(ent, 'seats', { usage: 14 }, NOW).remaining).toBe(0)
  })

  it.each([
    ['a negative amount', { amount: -1 }],
    ['a NaN amount', { amount: Number.NaN }],
    ['an infinite usage', { usage: Number.POSITIVE_INFINITY }],
    ['a string amount', { amount: '1' as unknown as number }],
  ])('denies %s as invalid_request', (_name, context) => {
    expect(decide(ent, 'seats', context, NOW)).toMatchObject({ allowed: false, reason: 'invalid_request' })
  })
})

describe('decide: metered usage caps', () => {
  const resetsAt = NOW_SEC + 10 * DAY_SEC
  const ent = entitlementsOf(
    {
      features: {
        api: { cap: { limit: 1000, period: 'month', used: 990, resetsAt } },
        storage: { cap: { limit: 50, period: 'total', used: 50 } },
        both: { limit: 5, cap: { limit: 100, period: 'day', used: 10, resetsAt: NOW_SEC + 3600 } },
      },
      upgrade: { plan: 'scale' },
    },
    { exp: NOW_SEC + 500 * DAY_SEC },
  )

  it('allows within the cap and reports used, remaining and the reset time', () => {
    expect(decide(ent, 'api', { amount: 10 }, NOW)).toMatchObject({
      allowed: true,
      reason: 'granted',
      limit: 1000,
      used: 990,
      remaining: 10,
      resetsAt: resetsAt * 1000,
    })
  })

  it('denies when the cap would be passed, with the reset time and the upgrade hint', () => {
    expect(decide(ent, 'api', { amount: 11 }, NOW)).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      used: 990,
      remaining: 10,
      resetsAt: resetsAt * 1000,
      upgrade: { plan: 'scale' },
    })
  })

  it('adds local usage since the snapshot to the server snapshot', () => {
    expect(decide(ent, 'api', { usage: 10 }, NOW)).toMatchObject({ allowed: false, used: 1000, remaining: 0 })
    expect(decide(ent, 'api', { usage: 9 }, NOW)).toMatchObject({ allowed: true, used: 999, remaining: 1 })
  })

  it('starts a new window from zero once the reset time has passed', () => {
    const after = resetsAt * 1000 + 1
    const decision = decide(ent, 'api', { amount: 500 }, after)
    expect(decision).toMatchObject({ allowed: true, used: 0, remaining: 1000 })
    expect(decision.resetsAt).toBe(Date.UTC(2026, 1, 25, 12))
  })

  it('never resets a total cap', () => {
    expect(decide(ent, 'storage', {}, NOW + 400 * DAY_SEC * 1000)).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      resetsAt: undefined,
    })
  })

  it('lets a peek with amount 0 succeed at exactly the cap', () => {
    expect(decide(ent, 'storage', { amount: 0 }, NOW).allowed).toBe(true)
  })

  it('checks both a limit and a cap on the same feature', () => {
    expect(decide(ent, 'both', { usage: 5 }, NOW).reason).toBe('limit_exceeded')
    expect(decide(ent, 'both', { usage: 4 }, NOW)).toMatchObject({ allowed: true, limit: 100, used: 14 })
  })
})

describe('decide: term, trial and grace', () => {
  const ent = entitlementsOf(
    {
      features: {
        core: true,
        trialled: { term: { trialEndsAt: NOW_SEC + 7 * DAY_SEC } },
        'old-trial': { term: { trialEndsAt: NOW_SEC - 1 } },
        'ended-feature': { term: { expiresAt: NOW_SEC - DAY_SEC } },
      },
      term: { expiresAt: NOW_SEC + 30 * DAY_SEC, graceEndsAt: NOW_SEC + 37 * DAY_SEC },
      upgrade: { url: 'https://example.com/renew' },
    },
    { exp: NOW_SEC + 40 * DAY_SEC },
  )

  it('grants inside the term and reports when it ends', () => {
    expect(decide(ent, 'core', {}, NOW)).toMatchObject({
      allowed: true,
      reason: 'granted',
      expiresAt: NOW + 30 * DAY_SEC * 1000,
    })
  })

  it('allows but flags the grace period after the term ends', () => {
    const inGrace = NOW + 31 * DAY_SEC * 1000
    expect(decide(ent, 'core', {}, inGrace)).toMatchObject({
      allowed: true,
      reason: 'grace_period',
      expiresAt: NOW + 37 * DAY_SEC * 1000,
    })
  })

  it('denies as expired once grace is over, with the renewal hint', () => {
    const after = NOW + 38 * DAY_SEC * 1000
    expect(decide(ent, 'core', {}, after)).toMatchObject({
      allowed: false,
      reason: 'expired',
      expiresAt: NOW + 37 * DAY_SEC * 1000,
      upgrade: { url: 'https://example.com/renew' },
    })
  })

  it('denies at the exact end of grace', () => {
    expect(decide(ent, 'core', {}, NOW + 37 * DAY_SEC * 1000).reason).toBe('expired')
  })

  it('allows a trial and says when it ends', () => {
    expect(decide(ent, 'trialled', {}, NOW)).toMatchObject({
      allowed: true,
      reason: 'trial',
      expiresAt: NOW + 7 * DAY_SEC * 1000,
    })
  })

  it('denies after the trial ends', () => {
    expect(decide(ent, 'old-trial', {}, NOW)).toMatchObject({
      allowed: false,
      reason: 'trial_ended',
      expiresAt: NOW - 1000,
    })
  })

  it('lets a feature carry its own expiry that ends before the license', () => {
    // The feature sets only expiresAt, so the license-wide grace still applies to it: 1 day ago + 7 days grace.
    expect(decide(ent, 'ended-feature', {}, NOW)).toMatchObject({ allowed: true, reason: 'grace_period' })
    const strict = entitlementsOf({ features: { x: { term: { expiresAt: NOW_SEC - 1 } } } })
    expect(decide(strict, 'x', {}, NOW)).toMatchObject({ allowed: false, reason: 'expired' })
  })

  it('expires without grace when no grace is given', () => {
    const ent2 = entitlementsOf({ features: { core: true }, term: { expiresAt: NOW_SEC } })
    expect(decide(ent2, 'core', {}, NOW - 1).allowed).toBe(true)
    expect(decide(ent2, 'core', {}, NOW).reason).toBe('expired')
  })
})

describe('decide: devices', () => {
  const bound = entitlementsOf({
    features: { core: true },
    devices: { max: 2, fingerprints: ['fp-a', 'fp-b'] },
  })
  const counted = entitlementsOf({ features: { core: true }, devices: { max: 3 } })

  it('allows a bound device', () => {
    expect(decide(bound, 'core', { device: 'fp-b' }, NOW).allowed).toBe(true)
  })

  it('denies a device the token is not bound to', () => {
    expect(decide(bound, 'core', { device: 'fp-z' }, NOW)).toMatchObject({
      allowed: false,
      reason: 'device_not_allowed',
    })
  })

  it('denies when no device is given to a device-bound token', () => {
    expect(decide(bound, 'core', {}, NOW).reason).toBe('device_not_allowed')
  })

  it('denies when more devices are active than allowed, with the numbers', () => {
    expect(decide(counted, 'core', { activeDevices: 4 }, NOW)).toMatchObject({
      allowed: false,
      reason: 'device_not_allowed',
      limit: 3,
      used: 4,
    })
    expect(decide(counted, 'core', { activeDevices: 3 }, NOW).allowed).toBe(true)
  })

  it('denies a device that names itself to a device-limited token bound to none: one seat is not every machine', () => {
    expect(decide(counted, 'core', { device: 'fp-a' }, NOW)).toMatchObject({
      allowed: false,
      reason: 'device_not_allowed',
    })
    // Server-side checks name no device: the token answers them.
    expect(decide(counted, 'core', {}, NOW).allowed).toBe(true)
    // A token with no device limit at all has nothing to say about devices.
    const unlimited = entitlementsOf({ features: { core: true } })
    expect(decide(unlimited, 'core', { device: 'fp-a' }, NOW).allowed).toBe(true)
  })
})

describe('decide: regions', () => {
  const ent = entitlementsOf({
    features: {
      core: true,
      payments: { regions: { allow: ['US', 'CA'] } },
      everywhere: { regions: {} },
    },
    regions: { allow: ['US', 'DE', 'FR'], deny: ['US-NY'] },
  })

  it.each([
    ['US', true],
    ['us', true],
    ['De', true],
    ['US-CA', true],
    ['us-ca', true],
    ['US-NY', false],
    ['us-ny', false],
    // A subdivision of a denied subdivision is denied with it.
    ['US-NY-1', false],
    ['DE', true],
    ['CN', false],
    ['USA', false],
    ['US_CA', false],
    // Upper-cased as the language says, not as ASCII: no letter outside it becomes a listed code.
    ['ÜS', false],
    ['', false],
  ])('token-wide policy: %s → %s', (region, allowed) => {
    const decision = decide(ent, 'core', { region }, NOW)
    expect(decision.allowed).toBe(allowed)
    if (!allowed) expect(decision.reason).toBe('region_blocked')
  })

  it('fails closed when a policy applies and no region is known', () => {
    expect(decide(ent, 'core', {}, NOW).reason).toBe('region_blocked')
  })

  it('lets a feature replace the token-wide policy', () => {
    expect(decide(ent, 'payments', { region: 'CA' }, NOW).allowed).toBe(true)
    expect(decide(ent, 'payments', { region: 'DE' }, NOW).reason).toBe('region_blocked')
    // The feature's own policy replaces the token-wide deny list too.
    expect(decide(ent, 'payments', { region: 'US-NY' }, NOW).allowed).toBe(true)
  })

  it('treats an empty per-feature policy as no restriction, still needing a region', () => {
    expect(decide(ent, 'everywhere', { region: 'CN' }, NOW).allowed).toBe(true)
  })
})

describe('decide: roles', () => {
  const ent = entitlementsOf({
    features: {
      reports: true,
      billing: { roles: ['owner', 'billing-admin'] },
      open: { roles: ['member', 'admin'] },
    },
    roles: ['admin'],
  })

  it('uses the token-wide roles for features without their own', () => {
    expect(decide(ent, 'reports', { roles: ['admin'] }, NOW).allowed).toBe(true)
    expect(decide(ent, 'reports', { roles: ['member'] }, NOW)).toMatchObject({
      allowed: false,
      reason: 'role_missing',
    })
  })

  it('lets a feature name its own roles', () => {
    expect(decide(ent, 'billing', { roles: ['billing-admin'] }, NOW).allowed).toBe(true)
    expect(decide(ent, 'billing', { roles: ['admin'] }, NOW).reason).toBe('role_missing')
  })

  it('denies a user with no roles', () => {
    expect(decide(ent, 'open', {}, NOW).reason).toBe('role_missing')
    expect(decide(ent, 'open', { roles: [] }, NOW).reason).toBe('role_missing')
  })
})

describe('decide: the token window', () => {
  it('denies once the token itself has expired, even though it verified earlier', () => {
    const ent = entitlementsOf({ features: { core: true } }, { exp: NOW_SEC + 60 })
    expect(decide(ent, 'core', {}, NOW + 59_999).allowed).toBe(true)
    expect(decide(ent, 'core', {}, NOW + 60_000)).toMatchObject({
      allowed: false,
      reason: 'expired',
      error: 'token_expired',
      expiresAt: NOW + 60_000,
    })
  })

  it('denies before the token becomes valid', () => {
    const ent = entitlementsOf({ features: { core: true } }, { nbf: NOW_SEC + 60 })
    expect(decide(ent, 'core', {}, NOW)).toMatchObject({
      allowed: false,
      reason: 'token_invalid',
      error: 'token_not_yet_valid',
    })
    expect(decide(ent, 'core', {}, NOW + 60_000).allowed).toBe(true)
  })
})

describe('decide: subject and order of reasons', () => {
  it('denies a token for another customer', () => {
    const ent = entitlementsOf({ features: { core: true } })
    expect(decide(ent, 'core', { subject: 'someone-else' }, NOW)).toMatchObject({
      allowed: false,
      reason: 'subject_mismatch',
      subject: 'someone-else',
      plan: undefined,
    })
    expect(decide(ent, 'core', { subject: 'customer-1' }, NOW).allowed).toBe(true)
  })

  it('reports the first failing condition in the documented order', () => {
    const ent = entitlementsOf({
      features: { x: { limit: 1, roles: ['admin'], regions: { allow: ['DE'] } } },
      devices: { fingerprints: ['fp'] },
      term: { expiresAt: NOW_SEC - 10 },
    })
    const everythingWrong = { usage: 5, roles: ['guest'], region: 'FR', device: 'other' }
    const first: DecisionReason = 'expired'
    expect(decide(ent, 'x', everythingWrong, NOW).reason).toBe(first)
    const live = entitlementsOf({
      features: { x: { limit: 1, roles: ['admin'], regions: { allow: ['DE'] } } },
      devices: { fingerprints: ['fp'] },
    })
    expect(decide(live, 'x', everythingWrong, NOW).reason).toBe('device_not_allowed')
    expect(decide(live, 'x', { ...everythingWrong, device: 'fp' }, NOW).reason).toBe('region_blocked')
    expect(decide(live, 'x', { ...everythingWrong, device: 'fp', region: 'DE' }, NOW).reason).toBe(
      'role_missing',
    )
    expect(
      decide(live, 'x', { ...everythingWrong, device: 'fp', region: 'DE', roles: ['admin'] }, NOW).reason,
    ).toBe('limit_exceeded')
    expect(decide(live, 'x', { device: 'fp', region: 'DE', roles: ['admin'] }, NOW).reason).toBe('granted')
  })

  it('keeps the trial flag through the other checks', () => {
    const ent = entitlementsOf({
      features: { x: { limit: 3, term: { trialEndsAt: NOW_SEC + HOUR_MS / 1000 } } },
    })
    expect(decide(ent, 'x', { usage: 1 }, NOW)).toMatchObject({
      allowed: true,
      reason: 'trial',
      limit: 3,
      used: 1,
    })
    expect(decide(ent, 'x', { usage: 3 }, NOW).reason).toBe('limit_exceeded')
  })

  it('gives every decision the same set of keys', () => {
    const ent = entitlementsOf({ features: { a: true, b: { limit: 1 } } })
    const shapes = new Set(
      [decide(ent, 'a', {}, NOW), decide(ent, 'b', { usage: 2 }, NOW), decide(ent, 'zz', {}, NOW)].map((d) =>
        Object.keys(d).join(),
      ),
    )
    expect(shapes.size).toBe(1)
  })
})

describe('decide() at a time that is not a number', () => {
  const ent = entitlementsOf({ features: { export: true, seats: { limit: 3 } } })
  it.each([null, undefined, '2026-12-03', '1764763200000', Number.NaN, {}, 5n])(
    'denies at %s, never grants',
    (now) => {
      for (const feature of ['export', 'seats'])
        expect(decide(ent, feature, {}, now as never)).toMatchObject({
          allowed: false,
          reason: 'invalid_request',
        })
    },
  )
})

describe('decide() on a context of the wrong shape: an invalid request, never a match, a pass or a throw', () => {
  const entitlements = entitlementsOf({
    features: { reports: { roles: ['admin'] }, eu: { regions: { allow: ['DE'] } }, seats: { limit: 3 } },
    devices: { max: 2 },
  })
  it.each([
    ['roles as one string that contains a role', 'reports', { roles: 'superadmin-wannabe' }],
    ['roles with a number in them', 'reports', { roles: ['admin', 7] }],
    ['a region that is a number', 'eu', { region: 49 }],
    ['a device that is an object', 'seats', { device: { id: 'x' } }],
    ['activeDevices NaN', 'seats', { activeDevices: Number.NaN }],
    ['activeDevices negative', 'seats', { activeDevices: -1 }],
    ['activeDevices a string', 'seats', { activeDevices: '9' }],
    ['a subject that is a number', 'seats', { subject: 42 }],
    ['a null context', 'seats', null],
    ['a string context', 'seats', 'customer-1'],
  ])('%s', (_name, feature, context) => {
    const answer = decide(entitlements, feature, context as never, NOW)
    expect(answer).toMatchObject({ allowed: false, reason: 'invalid_request' })
  })

  it('the same fields with the right types decide as before', () => {
    expect(decide(entitlements, 'reports', { roles: ['superadmin-wannabe'] }, NOW).reason).toBe(
      'role_missing',
    )
    expect(decide(entitlements, 'reports', { roles: ['admin'] }, NOW).allowed).toBe(true)
    expect(decide(entitlements, 'seats', { activeDevices: 3 }, NOW).reason).toBe('device_not_allowed')
  })

  /**
   * What the decision must be, worked out independently of `decide` from the documented order of conditions
   * (context types -> subject -> plan -> request -> device -> region -> role -> limit) for these entitlements.
   */
  function expectedReason(feature: string, c: Record<string, unknown>): DecisionReason {
    const isString = (v: unknown): v is string => typeof v === 'string'
    const typed =
      (c.subject === undefined || isString(c.subject)) &&
      (c.roles === undefined || (Array.isArray(c.roles) && c.roles.every(isString))) &&
      (c.region === undefined || isString(c.region)) &&
      (c.device === undefined || isString(c.device)) &&
      (c.activeDevices === undefined ||
        (Number.isSafeInteger(c.activeDevices) && (c.activeDevices as number) >= 0))
    if (!typed) return 'invalid_request'
    if (c.subject !== undefined && c.subject !== 'customer-1') return 'subject_mismatch'
    if (feature === 'missing') return 'not_in_plan'
    const amount = (v: unknown) => v === undefined || (typeof v === 'number' && Number.isFinite(v) && v >= 0)
    if (!amount(c.amount) || !amount(c.usage)) return 'invalid_request'
    // A token limited to 2 devices and bound to none cannot vouch for a device that names itself.
    if (c.device !== undefined) return 'device_not_allowed'
    if (c.activeDevices !== undefined && (c.activeDevices as number) > 2) return 'device_not_allowed'
    if (feature === 'eu' && (c.region as string | undefined)?.toUpperCase() !== 'DE') return 'region_blocked'
    if (feature === 'reports' && !(c.roles as string[] | undefined)?.includes('admin')) return 'role_missing'
    const asked = ((c.usage as number | undefined) ?? 0) + ((c.amount as number | undefined) ?? 1)
    if (feature === 'seats' && asked > 3) return 'limit_exceeded'
    return 'granted'
  }

  it('never throws, whatever the context holds, and decides as the documented order says (5 000 contexts)', () => {
    const values: unknown[] = [
      undefined,
      null,
      0,
      -1,
      Number.NaN,
      Infinity,
      '',
      'admin',
      [],
      ['admin'],
      [1],
      {},
      true,
    ]
    const fields = ['subject', 'roles', 'region', 'device', 'activeDevices', 'amount', 'usage']
    let seed = 7
    const pick = <T>(items: readonly T[]) => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0
      // The high bits: an LCG's low bit only alternates, which would pair every field with the same choices.
      return items[(seed >>> 16) % items.length]!
    }
    for (let i = 0; i < 5000; i++) {
      const context: Record<string, unknown> = {}
      for (const field of fields) if (pick([true, false])) context[field] = pick(values)
      const feature = pick(['reports', 'eu', 'seats', 'missing'])
      const answer = decide(entitlements, feature, context as never, NOW)
      const reason = expectedReason(feature, context)
      expect({ feature, context, reason: answer.reason, allowed: answer.allowed }).toEqual({
        feature,
        context,
        reason,
        allowed: reason === 'granted',
      })
    }
  })
})
