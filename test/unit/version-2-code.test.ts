import { SignJWT } from 'jose'
import { describe, expect, it } from 'vitest'
import { provesBad } from '../../src/client/tokens/token-verifier.js'
import { decide } from '../../src/core/decide.js'
import { EntitlementError } from '../../src/core/errors.js'
import { loadVersion2 } from '../../src/core/load-version-2.js'
import { ENTITLEMENT_TOKEN_TYPE } from '../../src/core/token-type.js'
import { createEntitlementVerifier } from '../../src/core/verify.js'
import { version2 } from '../../src/core/version-2-code.js'
import { createTestIssuer } from '../../src/testing.js'

// This file imports nothing that loads the code of format version 2 up front (test/helpers.ts does): each test file
// has a module graph of its own, so what is loaded here is what the verifier loaded. The tests run in order: the
// first two before anything loads it.

const issuer = await createTestIssuer()
const verifier = createEntitlementVerifier(issuer.verifyOptions)

describe('the code of format version 2, loaded when a token first says any of it', () => {
  it('is not loaded to verify and decide a token of version 1', async () => {
    const plain = await verifier.verify(
      await issuer.issue({ plan: { id: 'team' }, features: { export: true, seats: { limit: 5 } } }),
    )
    expect(decide(plain, 'seats', { usage: 4 }, Date.now())).toMatchObject({ allowed: true, remaining: 1 })
    expect(decide(plain, 'export', {}, Date.now()).allowed).toBe(true)
    expect(() => version2()).toThrow(/before it was loaded/)
  })

  it('fails to load as a page offline does: server_unavailable, which proves nothing of the token; then loads', async () => {
    let tries = 0
    const offline = () => {
      tries++
      return Promise.reject(new TypeError('Failed to fetch dynamically imported module'))
    }
    const error = await loadVersion2(offline).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(EntitlementError)
    expect((error as EntitlementError).code).toBe('server_unavailable')
    // A client keeps the stored token it could not verify for this: the code was out of reach, the token unjudged.
    expect(provesBad(error)).toBe(false)
    expect(() => version2()).toThrow(/before it was loaded/)
    // The failure is not kept: the next try fetches again.
    await expect(loadVersion2(offline)).rejects.toThrow(/could not be loaded/)
    expect(tries).toBe(2)
    const loaded = await loadVersion2()
    expect(loaded.decideForResource).toBeTypeOf('function')
    // Once loaded, it is never fetched again.
    expect(await loadVersion2(offline)).toBe(loaded)
    expect(tries).toBe(2)
  })

  it('decides a per-resource grant of a v: 2 token', async () => {
    const perRepository = await verifier.verify(
      await issuer.issue({
        plan: { id: 'team' },
        features: { builds: { per: { kind: 'repository', limit: 3, resources: { big: { limit: 10 } } } } },
      }),
    )
    const inBig = decide(perRepository, 'builds', { usage: 7, resource: 'repository:big' }, Date.now())
    expect(inBig).toMatchObject({ allowed: true, limit: 10, remaining: 3 })
    const elsewhere = decide(perRepository, 'builds', { usage: 3, resource: 'repository:small' }, Date.now())
    expect(elsewhere).toMatchObject({ allowed: false, reason: 'limit_exceeded', limit: 3 })
  })

  it('checks a v: 1 token that says something of version 2 by its rules, and refuses it', async () => {
    // Signed as a server that forgot the version bump would: a floating feature must not be granted without a lease.
    const now = Math.floor(Date.now() / 1000)
    const token = await new SignJWT({
      iss: issuer.issuer,
      aud: issuer.audience,
      sub: 'customer-1',
      iat: now,
      exp: now + 600,
      jti: 'forgot-the-bump',
      ent: {
        v: 1,
        plan: { id: 'team' },
        features: { cad: { pool: 'desk' } },
        pools: { desk: { seats: 1, holder: 'user', ttl: 60, heartbeat: 20 } },
      },
    })
      .setProtectedHeader({ alg: issuer.alg, kid: issuer.kid, typ: ENTITLEMENT_TOKEN_TYPE })
      .sign(issuer.privateKey)
    const error = await verifier.verify(token).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(EntitlementError)
    expect((error as EntitlementError).code).toBe('claims_invalid')
    expect((error as EntitlementError).message).toMatch(/need v: 2/)
  })
})
