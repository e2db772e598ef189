import { describe, expect, it } from 'vitest'
import { checkEntitlement, createEntitlementVerifier } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { frozen, NOW, NOW_SEC } from '../helpers.js'

describe('checkEntitlement', () => {
  it('verifies and decides in one call, with the context', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const token = await issuer.issue(
      { plan: { id: 'team' }, features: { seats: { limit: 5 } } },
      { subject: 'acme' },
    )
    const decision = await checkEntitlement(token, 'seats', {
      ...issuer.verifyOptions,
      context: { subject: 'acme', usage: 4, amount: 2 },
    })
    expect(decision).toMatchObject({
      allowed: false,
      reason: 'limit_exceeded',
      subject: 'acme',
      plan: 'team',
      remaining: 1,
    })
  })

  it('takes a ready verifier and its own clock', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const token = await issuer.issue({ features: { x: { term: { expiresAt: NOW_SEC + 10 } } } })
    const verifier = createEntitlementVerifier(issuer.verifyOptions)
    expect((await checkEntitlement(token, 'x', { verifier, now: () => NOW })).allowed).toBe(true)
    expect((await checkEntitlement(token, 'x', { verifier, now: () => NOW + 11_000 })).reason).toBe('expired')
  })

  it.each([
    ['garbage', 'not a token', 'token_malformed'],
    ['an empty string', '', 'token_malformed'],
    ['undefined', undefined, 'token_malformed'],
    ['a number', 12, 'token_malformed'],
    ['a huge string', 'x'.repeat(100_000), 'token_too_large'],
  ])('denies %s with token_invalid and the error code, without throwing', async (_name, token, code) => {
    const issuer = await createTestIssuer({ now: frozen })
    const decision = await checkEntitlement(token, 'export', {
      ...issuer.verifyOptions,
      context: { subject: 'acme' },
    })
    expect(decision).toMatchObject({
      allowed: false,
      feature: 'export',
      reason: 'token_invalid',
      error: code,
      subject: 'acme',
    })
  })

  it('denies an expired token as expired, with the error code', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const token = await issuer.issue({ features: { export: true } }, { issuedAt: NOW_SEC - 7200 })
    expect(await checkEntitlement(token, 'export', issuer.verifyOptions)).toMatchObject({
      allowed: false,
      reason: 'expired',
      error: 'token_expired',
    })
  })

  it('denies a token signed by a stranger', async () => {
    const trusted = await createTestIssuer({ now: frozen })
    const stranger = await createTestIssuer({ now: frozen })
    const token = await stranger.issue({ features: { export: true } })
    expect(await checkEntitlement(token, 'export', trusted.verifyOptions)).toMatchObject({
      allowed: false,
      reason: 'token_invalid',
      error: 'signature_invalid',
    })
  })

  it('throws a TypeError for misuse: no feature, no options', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    await expect(checkEntitlement('a.b.c', '', issuer.verifyOptions)).rejects.toBeInstanceOf(TypeError)
    await expect(checkEntitlement('a.b.c', 'x', undefined as never)).rejects.toBeInstanceOf(TypeError)
  })
})

describe('createTestIssuer', () => {
  it('refuses to sign claims the verifier would reject', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    await expect(issuer.issue({ features: { seats: { limit: -5 } } })).rejects.toThrow(
      /ent.features.seats.limit/,
    )
  })

  it('publishes a public-only JWK Set with kid, alg and use', async () => {
    const issuer = await createTestIssuer({ kid: 'k1', alg: 'ES256' })
    expect(issuer.jwks.keys).toHaveLength(1)
    expect(issuer.jwks.keys[0]).toMatchObject({
      kid: 'k1',
      alg: 'ES256',
      use: 'sig',
      kty: 'EC',
      crv: 'P-256',
    })
    expect(issuer.jwks.keys[0]).not.toHaveProperty('d')
  })
})
