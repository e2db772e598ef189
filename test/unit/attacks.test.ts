import { createHmac } from 'node:crypto'
import { exportJWK, generateKeyPair, SignJWT } from 'jose'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { checkEntitlement, createEntitlementVerifier, EntitlementError } from '../../src/index.js'
import { createTestIssuer, type TestIssuer } from '../../src/testing.js'
import { b64url, compact, frozen, NOW_SEC, rejectionCode, signRawEd25519 } from '../helpers.js'

let issuer: TestIssuer
let payload: Record<string, unknown>
let verifier: ReturnType<typeof createEntitlementVerifier>
let fetchSpy: ReturnType<typeof vi.fn>

beforeEach(async () => {
  issuer = await createTestIssuer({ now: frozen })
  payload = {
    iss: issuer.issuer,
    sub: 'customer-1',
    aud: issuer.audience,
    iat: NOW_SEC,
    exp: NOW_SEC + 3600,
    jti: 'jti-1',
    ent: { v: 1, plan: { id: 'free' }, features: { basic: true } },
  }
  verifier = createEntitlementVerifier({ ...issuer.verifyOptions, algorithms: undefined })
  // Any attempt to reach the network during verification fails the test.
  fetchSpy = vi.fn(() => Promise.reject(new Error('network used during verification')))
  vi.stubGlobal('fetch', fetchSpy)
})

afterEach(() => {
  vi.unstubAllGlobals()
  expect(fetchSpy).not.toHaveBeenCalled()
})

const hmac = (secret: Uint8Array | string, input: string) =>
  createHmac('sha256', secret).update(input).digest('base64url')
const header = (extra: Record<string, unknown> = {}) => ({
  alg: 'EdDSA',
  typ: 'entitlement+jwt',
  kid: 'test-key-1',
  ...extra,
})

describe('attacks on the verifier', () => {
  it('rejects alg "none" with an empty signature', async () => {
    const token = compact({ alg: 'none', typ: 'entitlement+jwt' }, payload, '')
    expect(await rejectionCode(verifier.verify(token))).toBe('token_malformed')
  })

  it('rejects alg "none" with any signature', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      const token = compact({ alg, typ: 'entitlement+jwt' }, payload, 'AA')
      expect(await rejectionCode(verifier.verify(token))).toBe('algorithm_not_allowed')
    }
  })

  it('rejects HS256 signed with the public key bytes (key confusion)', async () => {
    const x = Buffer.from(issuer.publicJwk.x!, 'base64url')
    const forms = [x, JSON.stringify(issuer.publicJwk), issuer.publicJwk.x!]
    for (const secret of forms) {
      const signingInput = `${b64url(JSON.stringify({ ...header(), alg: 'HS256' }))}.${b64url(JSON.stringify(payload))}`
      const token = `${signingInput}.${hmac(secret, signingInput)}`
      expect(await rejectionCode(verifier.verify(token))).toBe('algorithm_not_allowed')
    }
  })

  it('rejects RS256 forged against an RSA key when only EdDSA and ES256 are allowed', async () => {
    const rsa = await generateKeyPair('RS256')
    const token = await new SignJWT(payload).setProtectedHeader(header({ alg: 'RS256' })).sign(rsa.privateKey)
    expect(await rejectionCode(verifier.verify(token))).toBe('algorithm_not_allowed')
  })

  it('rejects a signature by another key under the trusted kid', async () => {
    const attacker = await generateKeyPair('EdDSA')
    const token = await new SignJWT(payload).setProtectedHeader(header()).sign(attacker.privateKey)
    expect(await rejectionCode(verifier.verify(token))).toBe('signature_invalid')
  })

  it('ignores an embedded jwk header and verifies with the trusted key only', async () => {
    const attacker = await generateKeyPair('EdDSA', { extractable: true })
    const jwk = await exportJWK(attacker.publicKey)
    for (const extra of [{ jwk }, { jwk, kid: undefined }]) {
      const token = await new SignJWT(payload).setProtectedHeader(header(extra)).sign(attacker.privateKey)
      expect(await rejectionCode(verifier.verify(token))).toBe('signature_invalid')
    }
  })

  it('ignores jku, x5u and x5c headers: no request is made, the trusted key decides', async () => {
    const attacker = await generateKeyPair('EdDSA')
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ jku: 'https://attacker.example/jwks.json' }, 'signature_invalid'],
      [{ x5u: 'https://attacker.example/cert.pem' }, 'signature_invalid'],
      [{ x5c: ['MIIBszCCAVmgAwIBAgIUattacker'] }, 'signature_invalid'],
      [{ jku: 'https://attacker.example/jwks.json', kid: 'attacker-key' }, 'key_unknown'],
    ]
    for (const [extra, code] of cases) {
      const forged = await new SignJWT(payload).setProtectedHeader(header(extra)).sign(attacker.privateKey)
      expect(await rejectionCode(verifier.verify(forged))).toBe(code)
      // The issuer's own token with such headers still verifies: they are ignored, not trusted, not fatal.
      const genuine = await issuer.sign(payload, { ...extra, kid: 'test-key-1' })
      await expect(verifier.verify(genuine)).resolves.toBeDefined()
    }
  })

  it('answers kid tricks with key_unknown, never with a lookup elsewhere', async () => {
    for (const kid of [
      '../../../../etc/passwd',
      "' OR '1'='1",
      'x'.repeat(5000),
      'https://attacker.example/key',
      '',
    ]) {
      const token = await issuer.sign(payload, { kid })
      expect(await rejectionCode(verifier.verify(token))).toBe('key_unknown')
    }
  })

  it('rejects a kid that is not a string', async () => {
    for (const kid of [42, { $ne: null }, ['test-key-1'], null]) {
      const token = await issuer.sign(payload, { kid })
      const code = await rejectionCode(verifier.verify(token))
      expect(code).toBe('key_unknown')
    }
  })

  it('rejects a header naming an unknown critical extension', async () => {
    const crit = header({ crit: ['urn:example:must-understand'], 'urn:example:must-understand': 1 })
    const token = await signRawEd25519(issuer.privateKey, crit, payload)
    expect(await rejectionCode(verifier.verify(token))).toBe('header_unsupported')
    // The same token without the crit header verifies: the rejection is about crit, not the signature.
    await expect(
      verifier.verify(await signRawEd25519(issuer.privateKey, header(), payload)),
    ).resolves.toBeDefined()
  })

  it('rejects a tampered payload', async () => {
    const token = await issuer.sign(payload)
    const [h, , s] = token.split('.')
    const richer = {
      ...payload,
      ent: { v: 1, plan: { id: 'enterprise' }, features: { basic: true, sso: true } },
    }
    expect(await rejectionCode(verifier.verify(`${h}.${b64url(JSON.stringify(richer))}.${s}`))).toBe(
      'signature_invalid',
    )
  })

  it('rejects a tampered header (alg swapped to ES256 on an EdDSA signature)', async () => {
    const token = await issuer.sign(payload)
    const [, p, s] = token.split('.')
    const swapped = `${b64url(JSON.stringify(header({ alg: 'ES256' })))}.${p}.${s}`
    expect(await rejectionCode(verifier.verify(swapped))).toBe('key_unknown')
  })

  it('rejects a truncated, an empty and a bit-flipped signature', async () => {
    const token = await issuer.sign(payload)
    const [h, p, s] = token.split('.') as [string, string, string]
    expect(await rejectionCode(verifier.verify(`${h}.${p}.${s.slice(0, 40)}`))).toBe('signature_invalid')
    expect(await rejectionCode(verifier.verify(`${h}.${p}.`))).toBe('token_malformed')
    const flipped = Buffer.from(s, 'base64url')
    flipped[10] = flipped[10]! ^ 1
    expect(await rejectionCode(verifier.verify(`${h}.${p}.${flipped.toString('base64url')}`))).toBe(
      'signature_invalid',
    )
  })

  it('rejects expired, not-yet-valid, wrong iss, wrong aud and wrong typ tokens', async () => {
    const cases: Array<[Record<string, unknown>, Record<string, unknown>, string]> = [
      [{ exp: NOW_SEC - 3600 }, {}, 'token_expired'],
      [{ nbf: NOW_SEC + 3600 }, {}, 'token_not_yet_valid'],
      [{ iat: NOW_SEC + 3600, exp: NOW_SEC + 7200 }, {}, 'token_not_yet_valid'],
      [{ iss: 'https://attacker.example' }, {}, 'issuer_invalid'],
      [{ aud: 'another-product' }, {}, 'audience_invalid'],
      [{}, { typ: 'JWT' }, 'type_invalid'],
      [{}, { typ: 'at+jwt' }, 'type_invalid'],
    ]
    for (const [claims, headerOverride, code] of cases) {
      const token = await issuer.sign({ ...payload, ...claims }, headerOverride)
      expect(await rejectionCode(verifier.verify(token))).toBe(code)
    }
  })

  it('rejects a 1 MB token by its length, before decoding anything', async () => {
    // The header segment is not even base64url: only a check that runs before parsing can answer token_too_large.
    const huge = `!!!!.${'A'.repeat(1024 * 1024)}.AAAA`
    expect(await rejectionCode(verifier.verify(huge))).toBe('token_too_large')
    const justOver = `${'A'.repeat(16_385)}`
    expect(await rejectionCode(verifier.verify(justOver))).toBe('token_too_large')
  })

  it('rejects values that are not strings', async () => {
    for (const value of [undefined, null, 42, {}, [], Buffer.from('a.b.c'), Symbol('t')]) {
      expect(await rejectionCode(verifier.verify(value))).toBe('token_malformed')
    }
  })

  it('rejects segments that are not JSON objects', async () => {
    // A header that is not a JSON object fails before any key is used; a payload is only read after its
    // signature verifies, so a bad payload under a forged signature is a signature failure first.
    const cases: Array<[string, string]> = [
      [`${b64url('not json')}.${b64url(JSON.stringify(payload))}.AAAA`, 'token_malformed'],
      [`${b64url('null')}.${b64url(JSON.stringify(payload))}.AAAA`, 'token_malformed'],
      [`${b64url('[1]')}.${b64url(JSON.stringify(payload))}.AAAA`, 'token_malformed'],
      [`${b64url(JSON.stringify(header()))}.${b64url('[1,2,3]')}.AAAA`, 'signature_invalid'],
    ]
    for (const [token, code] of cases) expect(await rejectionCode(verifier.verify(token))).toBe(code)
    // Correctly signed, but the payload is not a claims object.
    for (const body of ['[1,2,3]', '"string"', 'null', '42']) {
      const input = `${b64url(JSON.stringify(header()))}.${b64url(body)}`
      const signature = await crypto.subtle.sign(
        'Ed25519',
        issuer.privateKey,
        new TextEncoder().encode(input),
      )
      const token = `${input}.${b64url(new Uint8Array(signature))}`
      expect(await rejectionCode(verifier.verify(token))).toBe('token_malformed')
    }
  })

  it('rejects the JWS JSON serializations and extra segments', async () => {
    const token = await issuer.sign(payload)
    expect(await rejectionCode(verifier.verify(`${token}.extra`))).toBe('token_malformed')
    expect(await rejectionCode(verifier.verify(` ${token}`))).toBe('token_malformed')
    expect(await rejectionCode(verifier.verify(`${token}\n`))).toBe('token_malformed')
    const [h, p, s] = token.split('.')
    const json = JSON.stringify({ protected: h, payload: p, signature: s })
    expect(await rejectionCode(verifier.verify(json))).toBe('token_malformed')
  })

  it('does not let a feature named __proto__ or constructor grant anything else', async () => {
    const features = JSON.parse('{"__proto__": true, "basic": true}')
    const token = await issuer.sign({ ...payload, ent: { v: 1, plan: { id: 'free' }, features } })
    for (const feature of ['constructor', 'toString', 'hasOwnProperty', '__proto__']) {
      const decision = await checkEntitlement(token, feature, { verifier, now: frozen })
      expect(decision.allowed, feature).toBe(false)
      expect(decision.reason).toBe('not_in_plan')
    }
  })

  it('survives a fuzz loop of mutated tokens: only EntitlementError ever comes out', async () => {
    const valid = await issuer.issue({ plan: { id: 'pro' }, features: { export: true, seats: { limit: 3 } } })
    // A seeded generator keeps the run reproducible.
    let seed = 0x9e3779b9
    const random = () => {
      seed ^= seed << 13
      seed ^= seed >>> 17
      seed ^= seed << 5
      return (seed >>> 0) / 0x1_0000_0000
    }
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ {}"\u0000\u00ff'
    const mutate = (token: string): string => {
      const chars = [...token]
      const edits = 1 + Math.floor(random() * 4)
      for (let i = 0; i < edits; i++) {
        const at = Math.floor(random() * chars.length)
        const kind = random()
        if (kind < 0.4) chars[at] = alphabet[Math.floor(random() * alphabet.length)]!
        else if (kind < 0.6) chars.splice(at, 1)
        else if (kind < 0.8) chars.splice(at, 0, alphabet[Math.floor(random() * alphabet.length)]!)
        else chars.splice(at, Math.floor(random() * 20))
      }
      return chars.join('')
    }
    // Re-encode mutated JSON too, so the fuzzer reaches the signature and claims layers, not only the parser.
    const mutateJson = (token: string): string => {
      const [h, p, s] = token.split('.') as [string, string, string]
      const json = Buffer.from(p, 'base64url').toString('latin1')
      return `${h}.${Buffer.from(mutate(json), 'latin1').toString('base64url')}.${s}`
    }
    const seen = new Map<string, number>()
    for (let i = 0; i < 5000; i++) {
      const candidate = i % 2 === 0 ? mutate(valid) : mutateJson(valid)
      try {
        await verifier.verify(candidate)
      } catch (error) {
        if (!(error instanceof EntitlementError))
          throw new Error(`non-EntitlementError for ${candidate}`, { cause: error })
        seen.set(error.code, (seen.get(error.code) ?? 0) + 1)
        continue
      }
      // A mutation that still verifies must have left signed bytes alone (base64url has padding-bit slack).
      const original = valid.split('.')
      const mutated = candidate.split('.')
      expect(Buffer.from(mutated[1]!, 'base64url')).toEqual(Buffer.from(original[1]!, 'base64url'))
    }
    expect(seen.get('token_malformed')).toBeGreaterThan(100)
    expect(seen.get('signature_invalid')).toBeGreaterThan(100)
  })
})
