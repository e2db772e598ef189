import { describe, expect, it } from 'vitest'
import {
  checkEntitlement,
  createEntitlementVerifier,
  decide,
  type EntitlementClaim,
  entitlementTokenClaimsSchema,
  isVerifiedLease,
  type Lease,
} from '../../src/index.js'
import { formatVersionFor } from '../../src/protocol/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { compact, NOW, NOW_SEC, rejectionCode } from '../helpers.js'

// A CAD product: the whole license floats (two seats, per machine), and the render farm is a pool of its own.
const ent = {
  plan: { id: 'cad-floating' },
  features: { draw: true, export: true, render: { pool: 'farm' } },
  pools: {
    seats: { seats: 2, holder: 'machine', ttl: 120, heartbeat: 30, revival: 600, grace: 60 },
    farm: { seats: 10, holder: 'process', ttl: 60, heartbeat: 20, borrow: { max: 604_800, reserve: 2 } },
  },
  pool: 'seats',
} satisfies Partial<EntitlementClaim>

async function setup(now = () => NOW) {
  const issuer = await createTestIssuer({ now })
  const verifier = createEntitlementVerifier(issuer.verifyOptions)
  const entitlements = await verifier.verify(await issuer.issue(ent, { subject: 'acme' }))
  return { issuer, verifier, entitlements }
}

describe('floating-license pools in the token (format v2)', () => {
  it('needs v: 2, and names only pools it defines', () => {
    expect(formatVersionFor({ features: { draw: true } })).toBe(1)
    expect(formatVersionFor(ent)).toBe(2)
    expect(formatVersionFor({ features: { render: { pool: 'farm' } } })).toBe(2)
    const claims = (e: Record<string, unknown>) => ({
      iss: 'i',
      sub: 's',
      aud: 'a',
      iat: 1,
      exp: 2,
      jti: 't',
      ent: { plan: { id: 'p' }, ...e },
    })
    expect(entitlementTokenClaimsSchema.safeParse(claims({ ...ent, v: 2 })).success).toBe(true)
    expect(entitlementTokenClaimsSchema.safeParse(claims({ ...ent, v: 1 })).success).toBe(false)
    expect(entitlementTokenClaimsSchema.safeParse(claims({ ...ent, v: 2, pool: 'nope' })).success).toBe(false)
    const badPool = { ...ent.pools, seats: { ...ent.pools.seats, heartbeat: 120 } }
    expect(entitlementTokenClaimsSchema.safeParse(claims({ ...ent, v: 2, pools: badPool })).success).toBe(
      false,
    )
  })

  it('denies a floating feature without a lease, whatever plain checkEntitlement is asked', async () => {
    const { issuer, entitlements } = await setup()
    expect(decide(entitlements, 'draw', {}, NOW).reason).toBe('lease_required')
    expect(decide(entitlements, 'render', {}, NOW).reason).toBe('lease_required')
    // A feature outside the plan is still not_in_plan, not a lease question.
    expect(decide(entitlements, 'animate', {}, NOW).reason).toBe('not_in_plan')
    const token = await issuer.issue(ent, { subject: 'acme' })
    const answer = await checkEntitlement(token, 'draw', { ...issuer.verifyOptions })
    expect(answer).toMatchObject({ allowed: false, reason: 'lease_required' })
  })

  it('grants with a verified lease of the feature’s pool, until its end plus the pool’s grace', async () => {
    const { issuer, verifier, entitlements } = await setup()
    const lease = await verifier.verifyLease(
      await issuer.lease('seats', { subject: 'acme', holder: 'host-7', ttlSec: 120 }),
    )
    expect(isVerifiedLease(lease)).toBe(true)
    expect(lease).toMatchObject({ pool: 'seats', subject: 'acme', holder: 'host-7', borrowed: false })
    expect(lease.expiresAt - lease.issuedAt).toBe(120_000)
    expect(decide(entitlements, 'draw', { lease }, NOW)).toMatchObject({ allowed: true, reason: 'granted' })
    // The device names the machine: it must be the lease's holder in a pool held per machine.
    expect(decide(entitlements, 'draw', { lease, device: 'host-7' }, NOW).allowed).toBe(true)
    expect(decide(entitlements, 'draw', { lease, device: 'host-8' }, NOW).reason).toBe('lease_required')
    expect(decide(entitlements, 'draw', { lease, holder: 'host-8' }, NOW).reason).toBe('lease_required')
    // Another pool's feature: this lease is not for it.
    expect(decide(entitlements, 'render', { lease }, NOW).reason).toBe('lease_required')
    // Valid to the millisecond before its end plus 60 s of grace, denied at it.
    const end = lease.validUntil + 60_000
    expect(decide(entitlements, 'draw', { lease }, end - 1).allowed).toBe(true)
    expect(decide(entitlements, 'draw', { lease }, end).reason).toBe('lease_required')
  })

  it('refuses a lease made by hand, one for another customer, and one with a character changed', async () => {
    const { issuer, verifier, entitlements } = await setup()
    const token = await issuer.lease('seats', { subject: 'acme', holder: 'host-7' })
    const real = await verifier.verifyLease(token)
    const forged = { ...real } as Lease
    expect(isVerifiedLease(forged)).toBe(false)
    expect(decide(entitlements, 'draw', { lease: forged }, NOW).reason).toBe('lease_required')
    const other = await verifier.verifyLease(await issuer.lease('seats', { subject: 'globex', holder: 'h' }))
    expect(decide(entitlements, 'draw', { lease: other }, NOW).reason).toBe('lease_required')
    // One character changed anywhere in the token: never a lease.
    let refused = 0
    for (let i = 0; i < token.length; i += 7) {
      const c = token[i] === 'A' ? 'B' : 'A'
      const changed = token.slice(0, i) + c + token.slice(i + 1)
      if (changed === token) continue
      const code = await rejectionCode(verifier.verifyLease(changed))
      expect(code).not.toBe(undefined)
      refused++
    }
    expect(refused).toBeGreaterThan(20)
  })

  it('keeps leases, entitlement tokens and revocation lists apart by type, and refuses alg none', async () => {
    const { issuer, verifier } = await setup()
    const token = await issuer.issue(ent, { subject: 'acme' })
    expect(await rejectionCode(verifier.verifyLease(token))).toBe('type_invalid')
    const lease = await issuer.lease('seats', { subject: 'acme' })
    expect(await rejectionCode(verifier.verify(lease))).toBe('type_invalid')
    expect(await rejectionCode(verifier.verifyRevocationList(lease))).toBe('type_invalid')
    const none = compact(
      { alg: 'none', typ: 'lease+jwt' },
      {
        iss: issuer.issuer,
        aud: issuer.audience,
        sub: 'acme',
        iat: NOW_SEC,
        exp: NOW_SEC + 60,
        lease: { id: 'l', pool: 'seats', holder: 'h' },
      },
      '',
    )
    expect(await rejectionCode(verifier.verifyLease(none))).toBe('token_malformed')
    const unsigned = await issuer.sign(
      {
        iss: issuer.issuer,
        aud: issuer.audience,
        sub: 'acme',
        iat: NOW_SEC,
        exp: NOW_SEC + 60,
        lease: { id: 'l' },
      },
      { typ: 'lease+jwt' },
    )
    expect(await rejectionCode(verifier.verifyLease(unsigned))).toBe('claims_invalid')
  })

  it('judges an ended lease expired, unless just received: then by the server’s clock, not a skewed one here', async () => {
    // The server signs at NOW; this machine's clock runs 10 minutes ahead.
    const { issuer } = await setup()
    const ahead = createEntitlementVerifier({ ...issuer.verifyOptions, now: () => NOW + 600_000 })
    const token = await issuer.lease('seats', { subject: 'acme', ttlSec: 120 })
    expect(await rejectionCode(ahead.verifyLease(token))).toBe('token_expired')
    const received = await ahead.verifyLease(token, { received: true })
    // 120 s from its arrival by this machine's clock.
    expect(received.validUntil).toBe(NOW + 600_000 + 120_000)
    // A borrowed lease is judged by its signed end, received or not.
    const borrowed = await issuer.lease('farm', { subject: 'acme', ttlSec: 86_400, borrowed: true })
    const taken = await createEntitlementVerifier(issuer.verifyOptions).verifyLease(borrowed, {
      received: true,
    })
    expect(taken).toMatchObject({ borrowed: true, validUntil: (NOW_SEC + 86_400) * 1000 })
  })
})
