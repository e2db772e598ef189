import { delay, HttpResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createEntitlementVerifier } from '../../src/index.js'
import { createTestIssuer, type TestIssuer } from '../../src/testing.js'
import { frozen, rejectionCode } from '../helpers.js'

const JWKS_URL = 'https://license.entitle.test/.well-known/jwks.json'
const server = setupServer()
let requests = 0
let served: object = { keys: [] }

beforeAll(() => server.listen({ onUnhandledRequest: 'error' }))
afterAll(() => server.close())
afterEach(() => server.resetHandlers())
beforeEach(() => {
  requests = 0
  server.use(
    http.get(JWKS_URL, () => {
      requests++
      return HttpResponse.json(served)
    }),
  )
})

const verifierFor = (issuer: TestIssuer, jwks = {}) =>
  createEntitlementVerifier({ ...issuer.verifyOptions, keys: new URL(JWKS_URL), jwks })

describe('remote JWK Set', () => {
  it('fetches the set on first use and answers later tokens from its cache', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    served = issuer.jwks
    const verifier = verifierFor(issuer)
    for (let i = 0; i < 5; i++) await verifier.verify(await issuer.issue())
    expect(requests).toBe(1)
  })

  it('fetches once for many concurrent first verifications', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    served = issuer.jwks
    const verifier = verifierFor(issuer)
    const token = await issuer.issue()
    await Promise.all(Array.from({ length: 50 }, () => verifier.verify(token)))
    expect(requests).toBe(1)
  })

  it('refetches when a token names a kid the cached set lacks (rotation)', async () => {
    const current = await createTestIssuer({ kid: 'k1', now: frozen })
    const next = await createTestIssuer({ kid: 'k2', now: frozen })
    served = current.jwks
    const verifier = verifierFor(current, { cooldownMs: 0 })
    await verifier.verify(await current.issue())
    expect(requests).toBe(1)
    served = { keys: [...current.jwks.keys, ...next.jwks.keys] }
    expect((await verifier.verify(await next.issue())).keyId).toBe('k2')
    expect(requests).toBe(2)
    await verifier.verify(await next.issue())
    expect(requests).toBe(2)
  })

  it('refetches for at most five new unknown kids inside the cool-down, so forged kids cannot hammer the server', async () => {
    const current = await createTestIssuer({ kid: 'k1', now: frozen })
    served = current.jwks
    const verifier = verifierFor(current, { cooldownMs: 60_000 })
    await verifier.verify(await current.issue())
    for (let i = 0; i < 20; i++) {
      const stranger = await createTestIssuer({ kid: `forged-${i}`, now: frozen })
      expect(await rejectionCode(verifier.verify(await stranger.issue()))).toBe('key_unknown')
    }
    // The first load, then one fetch for each of the first five new kids (a rotated key must work at once).
    expect(requests).toBe(6)
  })

  it('answers jwks_unavailable when the server fails, and recovers when it is back', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    served = issuer.jwks
    server.use(http.get(JWKS_URL, () => new HttpResponse('boom', { status: 500 }), { once: true }))
    const verifier = verifierFor(issuer)
    const token = await issuer.issue()
    expect(await rejectionCode(verifier.verify(token))).toBe('jwks_unavailable')
    await expect(verifier.verify(token)).resolves.toBeDefined()
  })

  it.each([
    [
      'a body that is not JSON',
      () => new HttpResponse('<html>', { headers: { 'content-type': 'text/html' } }),
    ],
    ['JSON that is not a JWK Set', () => HttpResponse.json({ hello: 'world' })],
    [
      'a redirect (never followed)',
      () => HttpResponse.redirect('https://attacker.entitle.test/jwks.json', 302),
    ],
    ['a network error', () => HttpResponse.error()],
  ])('answers jwks_unavailable for %s', async (_name, respond) => {
    const issuer = await createTestIssuer({ now: frozen })
    server.use(http.get(JWKS_URL, respond))
    expect(await rejectionCode(verifierFor(issuer).verify(await issuer.issue()))).toBe('jwks_unavailable')
  })

  it('answers jwks_unavailable when the server is too slow', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    server.use(
      http.get(JWKS_URL, async () => {
        await delay('infinite')
        return HttpResponse.json(issuer.jwks)
      }),
    )
    expect(await rejectionCode(verifierFor(issuer, { timeoutMs: 50 }).verify(await issuer.issue()))).toBe(
      'jwks_unavailable',
    )
  })

  it('uses an injected fetch', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const calls: string[] = []
    const fetchImpl: typeof fetch = async (input) => {
      calls.push(String(input))
      return Response.json(issuer.jwks)
    }
    await verifierFor(issuer, { fetch: fetchImpl }).verify(await issuer.issue())
    expect(calls).toEqual([JWKS_URL])
    expect(requests).toBe(0)
  })

  it('allows plain http on loopback only', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    for (const url of [
      'http://127.0.0.1:8080/jwks.json',
      'http://localhost/jwks.json',
      'http://[::1]/jwks.json',
    ]) {
      expect(() => createEntitlementVerifier({ ...issuer.verifyOptions, keys: new URL(url) })).not.toThrow()
    }
    expect(() =>
      createEntitlementVerifier({ ...issuer.verifyOptions, keys: new URL('http://10.0.0.1/jwks.json') }),
    ).toThrow(TypeError)
  })
})
