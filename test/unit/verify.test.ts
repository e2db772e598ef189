import { createPublicKey, generateKeyPairSync } from 'node:crypto'
import { exportSPKI, importJWK } from 'jose'
import { describe, expect, it } from 'vitest'
import { createEntitlementVerifier, EntitlementError, verifyEntitlementToken } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { DAY_SEC, frozen, NOW, NOW_SEC, rejectionCode } from '../helpers.js'

const features = { export: true, seats: { limit: 10 } } as const

describe('verifyEntitlementToken', () => {
  it('returns the typed entitlements of a valid Ed25519 token', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const token = await issuer.issue(
      { plan: { id: 'pro', name: 'Pro', tier: 2 }, addons: ['sso'], features },
      { subject: 'acme', tokenId: 'tok-1', notBefore: NOW_SEC - 10 },
    )
    const result = await verifyEntitlementToken(token, issuer.verifyOptions)
    expect(result.subject).toBe('acme')
    expect(result.tokenId).toBe('tok-1')
    expect(result.issuer).toBe(issuer.issuer)
    expect(result.audience).toEqual([issuer.audience])
    expect(result.issuedAt).toBe(NOW)
    expect(result.notBefore).toBe(NOW - 10_000)
    expect(result.expiresAt).toBe(NOW + 3_600_000)
    expect(result.algorithm).toBe('EdDSA')
    expect(result.keyId).toBe('test-key-1')
    expect(result.plan).toEqual({ id: 'pro', name: 'Pro', tier: 2 })
    expect(result.addons).toEqual(['sso'])
    expect([...result.features.keys()]).toEqual(['export', 'seats'])
    expect(result.features.get('seats')?.limit).toBe(10)
    expect(Object.fromEntries([...result.features].map(([name, f]) => [name, f.limit]))).toEqual({
      export: undefined,
      seats: 10,
    })
    expect(Object.isFrozen(result)).toBe(true)
  })

  it.each(['ES256', 'ES384', 'RS256', 'PS256', 'Ed25519'] as const)(
    'verifies %s when it is allowed',
    async (alg) => {
      const issuer = await createTestIssuer({ alg, now: frozen })
      const token = await issuer.issue({ features })
      const result = await verifyEntitlementToken(token, issuer.verifyOptions)
      expect(result.algorithm).toBe(alg)
    },
  )

  it('allows EdDSA, Ed25519 and ES256 by default and RSA only on request', async () => {
    const es = await createTestIssuer({ alg: 'ES256', now: frozen })
    const rs = await createTestIssuer({ alg: 'RS256', now: frozen })
    const defaults = (issuer: typeof es) => ({ ...issuer.verifyOptions, algorithms: undefined })
    expect((await verifyEntitlementToken(await es.issue(), defaults(es))).algorithm).toBe('ES256')
    expect(await rejectionCode(verifyEntitlementToken(await rs.issue(), defaults(rs)))).toBe(
      'algorithm_not_allowed',
    )
  })

  it('accepts the media-type form of typ (application/entitlement+jwt)', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const payload = JSON.parse(Buffer.from((await issuer.issue()).split('.')[1]!, 'base64url').toString())
    const token = await issuer.sign(payload, { typ: 'application/entitlement+jwt' })
    await expect(verifyEntitlementToken(token, issuer.verifyOptions)).resolves.toBeDefined()
  })

  it('accepts an audience array that includes this product', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const token = await issuer.issue({}, { audience: ['other-app', issuer.audience] })
    await expect(verifyEntitlementToken(token, issuer.verifyOptions)).resolves.toBeDefined()
  })

  it('accepts any of several expected issuers', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const options = { ...issuer.verifyOptions, issuer: ['https://old.example', issuer.issuer] }
    await expect(verifyEntitlementToken(await issuer.issue(), options)).resolves.toBeDefined()
  })

  describe('time', () => {
    const cases: Array<
      [string, { issuedAt?: number; expiresInSec?: number; notBefore?: number }, string | null]
    > = [
      [
        'accepts a token expired 59 s ago (inside the default 60 s tolerance)',
        { issuedAt: NOW_SEC - 3659 },
        null,
      ],
      ['rejects a token expired 61 s ago', { issuedAt: NOW_SEC - 3661 }, 'token_expired'],
      ['rejects a token expired a day ago', { issuedAt: NOW_SEC - DAY_SEC - 3600 }, 'token_expired'],
      ['accepts nbf 59 s ahead', { notBefore: NOW_SEC + 59 }, null],
      ['rejects nbf 61 s ahead', { notBefore: NOW_SEC + 61 }, 'token_not_yet_valid'],
      ['rejects iat 61 s ahead (issued in the future)', { issuedAt: NOW_SEC + 61 }, 'token_not_yet_valid'],
      ['accepts iat 59 s ahead', { issuedAt: NOW_SEC + 59 }, null],
    ]
    it.each(cases)('%s', async (_name, options, code) => {
      const issuer = await createTestIssuer({ now: frozen })
      const verifying = verifyEntitlementToken(await issuer.issue({}, options), issuer.verifyOptions)
      if (code === null) await expect(verifying).resolves.toBeDefined()
      else expect(await rejectionCode(verifying)).toBe(code)
    })

    it('uses the configured clock tolerance', async () => {
      const issuer = await createTestIssuer({ now: frozen })
      const token = await issuer.issue({}, { issuedAt: NOW_SEC - 3610 })
      const strict = { ...issuer.verifyOptions, clockToleranceSec: 0 }
      const lax = { ...issuer.verifyOptions, clockToleranceSec: 600 }
      expect(await rejectionCode(verifyEntitlementToken(token, strict))).toBe('token_expired')
      await expect(verifyEntitlementToken(token, lax)).resolves.toBeDefined()
    })

    it('reads time only from the injected clock', async () => {
      const issuer = await createTestIssuer({ now: frozen })
      const token = await issuer.issue({}, { issuedAt: NOW_SEC, expiresInSec: 60 })
      let now = NOW
      const verifier = createEntitlementVerifier({
        ...issuer.verifyOptions,
        clockToleranceSec: 0,
        now: () => now,
      })
      await expect(verifier.verify(token)).resolves.toBeDefined()
      now = NOW + 61_000
      expect(await rejectionCode(verifier.verify(token))).toBe('token_expired')
    })
  })

  describe('issuer, audience and type', () => {
    it('rejects another issuer', async () => {
      const issuer = await createTestIssuer({ now: frozen })
      const token = await issuer.issue({}, { issuer: 'https://evil.example' })
      expect(await rejectionCode(verifyEntitlementToken(token, issuer.verifyOptions))).toBe('issuer_invalid')
    })

    it('rejects a token for another product', async () => {
      const issuer = await createTestIssuer({ now: frozen })
      const token = await issuer.issue({}, { audience: 'another-app' })
      expect(await rejectionCode(verifyEntitlementToken(token, issuer.verifyOptions))).toBe(
        'audience_invalid',
      )
    })

    it.each([['JWT'], ['at+jwt'], [undefined]])(
      'rejects typ %s: only entitlement+jwt is an entitlement',
      async (typ) => {
        const issuer = await createTestIssuer({ now: frozen })
        const payload = JSON.parse(Buffer.from((await issuer.issue()).split('.')[1]!, 'base64url').toString())
        const token = await issuer.sign(payload, { typ })
        expect(await rejectionCode(verifyEntitlementToken(token, issuer.verifyOptions))).toBe('type_invalid')
      },
    )
  })

  describe('claims', () => {
    const base = {
      iss: 'https://issuer.entitle.test',
      aud: 'entitle-test-app',
      iat: NOW_SEC,
      exp: NOW_SEC + 60,
    }
    const ent = { v: 1, plan: { id: 'pro' }, features: { export: true } }
    const invalid: Array<[string, Record<string, unknown>]> = [
      ['no ent claim', { ...base, sub: 'a', jti: 'j' }],
      ['an unknown format version', { ...base, sub: 'a', jti: 'j', ent: { ...ent, v: 3 } }],
      [
        'a negative limit',
        { ...base, sub: 'a', jti: 'j', ent: { ...ent, features: { seats: { limit: -1 } } } },
      ],
      [
        'a fractional limit',
        { ...base, sub: 'a', jti: 'j', ent: { ...ent, features: { seats: { limit: 1.5 } } } },
      ],
      [
        'a monthly cap without resetsAt',
        {
          ...base,
          sub: 'a',
          jti: 'j',
          ent: { ...ent, features: { api: { cap: { limit: 1, period: 'month', used: 0 } } } },
        },
      ],
      [
        'a feature that is a string',
        { ...base, sub: 'a', jti: 'j', ent: { ...ent, features: { x: 'yes' } } },
      ],
      [
        'an upgrade URL that is not http(s)',
        { ...base, sub: 'a', jti: 'j', ent: { ...ent, upgrade: { url: 'javascript:alert(1)' } } },
      ],
      ['no plan', { ...base, sub: 'a', jti: 'j', ent: { v: 1, features: {} } }],
    ]
    it.each(invalid)('rejects a correctly signed token with %s', async (_name, payload) => {
      const issuer = await createTestIssuer({ now: frozen })
      const token = await issuer.sign(payload)
      expect(await rejectionCode(verifyEntitlementToken(token, issuer.verifyOptions))).toBe('claims_invalid')
    })

    it.each(['sub', 'jti', 'exp', 'iat'])('rejects a token without %s', async (claim) => {
      const issuer = await createTestIssuer({ now: frozen })
      const payload: Record<string, unknown> = { ...base, sub: 'a', jti: 'j', ent }
      delete payload[claim]
      const token = await issuer.sign(payload)
      expect(await rejectionCode(verifyEntitlementToken(token, issuer.verifyOptions))).toBe('claims_invalid')
    })

    it('names where the claims are invalid, and keeps every problem found as cause', async () => {
      const issuer = await createTestIssuer({ now: frozen })
      const token = await issuer.sign({
        ...base,
        sub: 'a',
        jti: 'j',
        ent: { ...ent, features: { seats: { limit: -1 } } },
      })
      const error = await verifyEntitlementToken(token, issuer.verifyOptions).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(EntitlementError)
      expect((error as EntitlementError).message).toContain('ent.features.seats.limit: at least 0')
      expect((error as EntitlementError).cause).toEqual([
        { path: ['ent', 'features', 'seats', 'limit'], text: 'at least 0' },
      ])
    })

    it('keeps unknown informational fields out of the model without failing', async () => {
      const issuer = await createTestIssuer({ now: frozen })
      const token = await issuer.sign({
        ...base,
        sub: 'a',
        jti: 'j',
        ent: { ...ent, note: 'hello' },
        extra: 1,
      })
      const result = await verifyEntitlementToken(token, issuer.verifyOptions)
      expect(result.features.has('export')).toBe(true)
    })
  })

  describe('key sources', () => {
    it('takes a single public JWK', async () => {
      const issuer = await createTestIssuer({ now: frozen })
      const options = { ...issuer.verifyOptions, keys: issuer.publicJwk }
      await expect(verifyEntitlementToken(await issuer.issue(), options)).resolves.toBeDefined()
    })

    it('takes a PEM SPKI string and imports it once per algorithm', async () => {
      const issuer = await createTestIssuer({ now: frozen })
      const pem = await exportSPKI((await importJWK(issuer.publicJwk, 'EdDSA')) as CryptoKey)
      const verifier = createEntitlementVerifier({ ...issuer.verifyOptions, keys: pem })
      await expect(verifier.verify(await issuer.issue())).resolves.toBeDefined()
      await expect(verifier.verify(await issuer.issue())).resolves.toBeDefined()
    })

    it('reports a PEM key that cannot verify the token algorithm as key_invalid', async () => {
      const ed = await createTestIssuer({ now: frozen })
      const es = await createTestIssuer({ alg: 'ES256', now: frozen })
      const pem = await exportSPKI((await importJWK(ed.publicJwk, 'EdDSA')) as CryptoKey)
      const options = { ...es.verifyOptions, keys: pem }
      expect(await rejectionCode(verifyEntitlementToken(await es.issue(), options))).toBe('key_invalid')
    })

    it('takes a CryptoKey and a Node KeyObject', async () => {
      const issuer = await createTestIssuer({ now: frozen })
      const cryptoKey = (await importJWK(issuer.publicJwk, 'EdDSA')) as CryptoKey
      const keyObject = createPublicKey({ key: issuer.publicJwk as never, format: 'jwk' })
      const token = await issuer.issue()
      await expect(
        verifyEntitlementToken(token, { ...issuer.verifyOptions, keys: cryptoKey }),
      ).resolves.toBeDefined()
      await expect(
        verifyEntitlementToken(token, { ...issuer.verifyOptions, keys: keyObject }),
      ).resolves.toBeDefined()
    })

    it('picks the key by kid from a JWK Set during rotation', async () => {
      const oldIssuer = await createTestIssuer({ kid: '2025', now: frozen })
      const newIssuer = await createTestIssuer({ kid: '2026', now: frozen })
      const jwks = { keys: [...oldIssuer.jwks.keys, ...newIssuer.jwks.keys] }
      const verifier = createEntitlementVerifier({ ...newIssuer.verifyOptions, keys: jwks })
      expect((await verifier.verify(await oldIssuer.issue())).keyId).toBe('2025')
      expect((await verifier.verify(await newIssuer.issue())).keyId).toBe('2026')
    })

    it('tries each fitting key when a token has no kid', async () => {
      const first = await createTestIssuer({ kid: 'a', now: frozen })
      const second = await createTestIssuer({ kid: 'b', now: frozen })
      const jwks = { keys: [...first.jwks.keys, ...second.jwks.keys] }
      const payload = JSON.parse(Buffer.from((await second.issue()).split('.')[1]!, 'base64url').toString())
      const token = await second.sign(payload, { kid: undefined })
      const verifier = createEntitlementVerifier({ ...second.verifyOptions, keys: jwks })
      expect((await verifier.verify(token)).keyId).toBeUndefined()
      const stranger = await createTestIssuer({ now: frozen })
      const forged = await stranger.sign(payload, { kid: undefined })
      expect(await rejectionCode(verifier.verify(forged))).toBe('signature_invalid')
    })

    it('rejects a token whose kid is not in the set', async () => {
      const issuer = await createTestIssuer({ now: frozen })
      const token = await issuer.issue({}, { kid: 'retired-key' })
      expect(await rejectionCode(verifyEntitlementToken(token, issuer.verifyOptions))).toBe('key_unknown')
    })

    it.each([
      ['an HMAC (oct) JWK', { kty: 'oct', k: 'c2VjcmV0' }],
      ['a private JWK', { kty: 'OKP', crv: 'Ed25519', x: 'AAAA', d: 'BBBB' }],
      ['a JWK Set holding an oct key', { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] }],
      ['a PEM private key', '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----'],
      ['a random string', 'not a key'],
      ['a number', 42],
      ['null', null],
      ['a plain http URL off loopback', new URL('http://keys.example/jwks.json')],
    ])('refuses %s at construction with a TypeError', (_name, keys) => {
      expect(() =>
        createEntitlementVerifier({ keys: keys as never, issuer: 'https://i.example', audience: 'app' }),
      ).toThrow(TypeError)
    })

    it('refuses a private or secret KeyObject at construction', () => {
      const { privateKey } = generateKeyPairSync('ed25519')
      expect(() =>
        createEntitlementVerifier({ keys: privateKey, issuer: 'https://i.example', audience: 'app' }),
      ).toThrow(/public key/)
    })
  })

  describe('options', () => {
    const keys = { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo' }
    const ok = { keys, issuer: 'https://i.example', audience: 'app' }
    it.each([
      ['HS256 in the allowlist', { algorithms: ['HS256'] }],
      ['none in the allowlist', { algorithms: ['none'] }],
      ['an empty allowlist', { algorithms: [] }],
      ['a negative clock tolerance', { clockToleranceSec: -1 }],
      ['a NaN clock tolerance', { clockToleranceSec: Number.NaN }],
      ['a tiny maxTokenLength', { maxTokenLength: 10 }],
      ['no issuer', { issuer: undefined }],
      ['an empty audience', { audience: '' }],
      ['an empty audience list', { audience: [] }],
      ['a clock that is not a function', { now: 5 }],
    ])('refuses %s with a TypeError', (_name, bad) => {
      expect(() => createEntitlementVerifier({ ...ok, ...(bad as object) } as never)).toThrow(TypeError)
    })

    it('rejects, rather than throws, from the one-shot verify when options are bad', async () => {
      await expect(verifyEntitlementToken('a.b.c', { ...ok, algorithms: [] })).rejects.toBeInstanceOf(
        TypeError,
      )
    })

    it('reuses one verifier for the same options object', async () => {
      const issuer = await createTestIssuer({ now: frozen })
      const token = await issuer.issue()
      const a = await verifyEntitlementToken(token, issuer.verifyOptions)
      const b = await verifyEntitlementToken(token, issuer.verifyOptions)
      expect(a.tokenId).toBe(b.tokenId)
    })
  })
})

describe('messages that say what to do', () => {
  const messageOf = (promise: Promise<unknown>) =>
    promise.then(
      () => 'verified',
      (error: EntitlementError) => `${error.code}: ${error.message}`,
    )

  it('a token with a "Bearer " prefix says so', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const token = await issuer.issue({ features })
    expect(await messageOf(verifyEntitlementToken(`Bearer ${token}`, issuer.verifyOptions))).toBe(
      'token_malformed: the token starts with "Bearer ": pass the token alone, without the Authorization scheme',
    )
  })

  it('a wrong issuer or audience names the expected and the actual value', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const token = await issuer.issue(
      { features },
      { issuer: 'http://127.0.0.1:8787', audience: 'acme-editor' },
    )
    expect(await messageOf(verifyEntitlementToken(token, issuer.verifyOptions))).toBe(
      'issuer_invalid: the token was issued by "http://127.0.0.1:8787", not "https://issuer.entitle.test"',
    )
    const audience = await issuer.issue({ features }, { audience: 'acme-editor' })
    expect(
      await messageOf(
        verifyEntitlementToken(audience, { ...issuer.verifyOptions, audience: ['my-app', 'other'] }),
      ),
    ).toBe('audience_invalid: the token is for the audience "acme-editor", not "my-app" or "other"')
  })

  it('claims that do not fit the format say what is wrong, not only where', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const token = await issuer.sign({
      iss: issuer.issuer,
      aud: issuer.audience,
      sub: 'acme',
      iat: NOW_SEC,
      exp: NOW_SEC + 60,
      jti: 'j',
      ent: { v: 1, plan: { id: 'p' }, features: { 'api-calls': { cap: { limit: -5 } } } },
    })
    const message = await messageOf(verifyEntitlementToken(token, issuer.verifyOptions))
    expect(message).toMatch(/^claims_invalid: the token claims are invalid: /)
    expect(message).toContain('ent.features.api-calls.cap.limit: at least 0')
  })
})
