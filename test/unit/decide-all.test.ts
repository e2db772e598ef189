import { describe, expect, it } from 'vitest'
import { createEntitlementVerifier, decide, decideAll } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { frozen, NOW } from '../helpers.js'

describe('decideAll(): every feature at once', () => {
  it('answers each granted feature and each one the token names a hint for, as decide() does', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const entitlements = await createEntitlementVerifier(issuer.verifyOptions).verify(
      await issuer.issue({
        plan: { id: 'team' },
        features: {
          export: true,
          reports: { roles: ['admin'] },
          seats: { limit: 10 },
          constructor: true as const,
        },
        upgrades: { sso: { plan: 'business' }, export: { plan: 'never-used' } },
      }),
    )
    const context = { roles: ['member'] }
    const all = decideAll(entitlements, context, NOW)
    expect(Object.keys(all)).toEqual(['export', 'reports', 'seats', 'constructor', 'sso'])
    for (const [name, decision] of Object.entries(all))
      expect(decision).toEqual(decide(entitlements, name, context, NOW))
    expect(all.reports).toMatchObject({ allowed: false, reason: 'role_missing' })
    expect(all.sso).toMatchObject({ allowed: false, reason: 'not_in_plan', upgrade: { plan: 'business' } })
    // No prototype: a feature the token does not name is absent, whatever its name.
    expect(all.toString).toBeUndefined()
    expect(all.constructor).toMatchObject({ allowed: true })
    expect(Object.isFrozen(all)).toBe(true)
    expect(JSON.parse(JSON.stringify(all)).seats).toMatchObject({ allowed: true, limit: 10 })
  })
})
