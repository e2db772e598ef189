import { CompactSign, createLocalJWKSet, FlattenedSign, type JWTPayload, jwtVerify } from 'jose'
import { describe, expect, it } from 'vitest'
import { checkClaims } from '../../src/core/claims-check.js'
import { createEntitlementVerifier } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { frozen, NOW, NOW_SEC, rejectionCode, seeded } from '../helpers.js'

// The verifier asks jose for the signature alone (compactVerify) and applies the JWT rules jwtVerify applied
// itself (src/core/registered-claims.ts), for the three kinds of token it reads. These tests hold the two
// together: every token gets the code it got when jose's jwtVerify judged its claims.

/** The codes jose's jwtVerify errors led to before (the verifier's former mapping of them). */
function codeOfJose(error: { code?: string; claim?: string; reason?: string }): string {
  switch (error.code) {
    case 'ERR_JWT_EXPIRED':
      return 'token_expired'
    case 'ERR_JWT_INVALID':
    case 'ERR_JWS_INVALID':
      return 'token_malformed'
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      if (error.reason === 'missing' && error.claim !== 'typ') return 'claims_invalid'
      if (error.claim === 'iss') return 'issuer_invalid'
      if (error.claim === 'aud') return 'audience_invalid'
      if (error.claim === 'nbf' || error.claim === 'iat') return 'token_not_yet_valid'
      if (error.claim === 'typ') return 'type_invalid'
      return 'claims_invalid'
  }
  throw new Error(`unexpected jose error ${error.code}`)
}

const MISSING = Symbol('missing')

describe('registered claims, judged as jose judged them', () => {
  it('gives every token the code jose.jwtVerify led to, over 600 generated headers and claim sets', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const verifier = createEntitlementVerifier(issuer.verifyOptions)
    const keys = createLocalJWKSet(issuer.jwks)
    const template = JSON.parse(Buffer.from((await issuer.issue()).split('.')[1]!, 'base64url').toString())
    const choices: Record<string, unknown[]> = {
      iss: [issuer.issuer, issuer.issuer, 'https://other.example', 7, MISSING],
      aud: [issuer.audience, [issuer.audience, 'x'], ['x', 'y'], 'other', [], 3, MISSING],
      sub: ['customer-1', 'customer-1', MISSING],
      jti: ['token-1', 'token-1', MISSING],
      iat: [NOW_SEC, NOW_SEC - 10, NOW_SEC + 59, NOW_SEC + 61, '1', MISSING],
      nbf: [MISSING, MISSING, NOW_SEC - 5, NOW_SEC + 59, NOW_SEC + 61, 'soon'],
      exp: [NOW_SEC + 3600, NOW_SEC + 3600, NOW_SEC - 59, NOW_SEC - 61, NOW_SEC, '2030', MISSING],
      typ: [
        'entitlement+jwt',
        'entitlement+jwt',
        'application/entitlement+jwt',
        'Entitlement+JWT',
        'text/entitlement+jwt',
        'JWT',
        MISSING,
      ],
    }
    const next = seeded(31)
    const pick = (list: unknown[]) => list[Math.floor(next() * list.length)]
    const outcomes = new Map<string, number>()
    for (let n = 0; n < 600; n++) {
      const payload: Record<string, unknown> = { ...template }
      const header: Record<string, unknown> = {}
      for (const [claim, values] of Object.entries(choices)) {
        const value = pick(values)
        const target = claim === 'typ' ? header : payload
        if (value === MISSING) delete target[claim]
        else target[claim] = value
      }
      // `sign` sets typ itself; an explicit undefined drops it.
      const token = await issuer.sign(payload, { typ: header.typ })
      let expected = 'ok'
      try {
        await jwtVerify(token, keys, {
          algorithms: ['EdDSA'],
          issuer: issuer.issuer,
          audience: issuer.audience,
          typ: 'entitlement+jwt',
          clockTolerance: 60,
          currentDate: new Date(NOW),
          requiredClaims: ['iat', 'exp', 'sub', 'jti'],
        })
      } catch (error) {
        expected = codeOfJose(error as { code?: string })
      }
      const code = await verifier.verify(token).then(
        () => 'ok',
        (error: { code?: string }) => error.code ?? 'no code',
      )
      // Past jose's rules, the verifier's own, in its order: a token issued in the future, then the claim format.
      if (expected === 'ok')
        expected =
          typeof payload.iat === 'number' && payload.iat > NOW_SEC + 60
            ? 'token_not_yet_valid'
            : checkClaims(payload).problems !== undefined
              ? 'claims_invalid'
              : 'ok'
      expect({ n, payload, header, code }).toEqual({ n, payload, header, code: expected })
      outcomes.set(code, (outcomes.get(code) ?? 0) + 1)
    }
    // The generator reaches every rule, and some tokens pass them all.
    expect([...outcomes.keys()].sort()).toEqual(
      [
        'audience_invalid',
        'claims_invalid',
        'issuer_invalid',
        'ok',
        'token_expired',
        'token_not_yet_valid',
        'type_invalid',
      ].sort(),
    )
  })

  it('refuses a forged token for its signature, whatever else is wrong with its claims', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const other = await createTestIssuer({ now: frozen, kid: issuer.kid })
    const forged = [
      await other.issue(),
      await other.sign({ iss: 'elsewhere', exp: NOW_SEC - 3600, ent: { v: 9 } }),
      await other.sign({ nbf: 'never' } as unknown as JWTPayload, { typ: 'JWT' }),
    ]
    const verifier = createEntitlementVerifier(issuer.verifyOptions)
    for (const token of forged) expect(await rejectionCode(verifier.verify(token))).toBe('signature_invalid')
  })

  it('refuses a signed payload that is not a JSON object, or an unencoded one, as malformed', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const sign = (payload: string, header: Record<string, unknown> = {}) =>
      new CompactSign(new TextEncoder().encode(payload))
        .setProtectedHeader({ alg: issuer.alg, kid: issuer.kid, typ: 'entitlement+jwt', ...header })
        .sign(issuer.privateKey)
    const valid = Buffer.from((await issuer.issue()).split('.')[1]!, 'base64url').toString()
    const verifier = createEntitlementVerifier(issuer.verifyOptions)
    for (const payload of ['not json', '[1,2]', 'null', '"text"', '{"iss":'])
      expect(await rejectionCode(verifier.verify(await sign(payload)))).toBe('token_malformed')
    // Invalid UTF-8 in the payload bytes: decoded strictly, as jose decodes it.
    const badUtf8 = await new CompactSign(new Uint8Array([0x7b, 0xff, 0x7d]))
      .setProtectedHeader({ alg: issuer.alg, kid: issuer.kid, typ: 'entitlement+jwt' })
      .sign(issuer.privateKey)
    expect(await rejectionCode(verifier.verify(badUtf8))).toBe('token_malformed')
    // Signed with b64: false (RFC 7797), the payload is the segment's text itself. Here that text is the base64url
    // of good claims: read as a JWT it would pass, but a JWT may not use an unencoded payload.
    const text = Buffer.from(valid).toString('base64url')
    const jws = await new FlattenedSign(new TextEncoder().encode(text))
      .setProtectedHeader({
        alg: issuer.alg,
        kid: issuer.kid,
        typ: 'entitlement+jwt',
        b64: false,
        crit: ['b64'],
      })
      .sign(issuer.privateKey)
    // jose leaves an unencoded payload out of the serialization; the signature covers the text all the same.
    const unencoded = `${jws.protected}.${text}.${jws.signature}`
    expect(await rejectionCode(verifier.verify(unencoded))).toBe('token_malformed')
    await expect(verifier.verify(await sign(valid))).resolves.toBeDefined()
  })

  it('never accepts a token by a clock that reads no time', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const token = await issuer.issue()
    for (const now of [() => Number.NaN, () => Number.POSITIVE_INFINITY]) {
      const verifier = createEntitlementVerifier({ ...issuer.verifyOptions, now })
      expect(await rejectionCode(verifier.verify(token))).toBe('token_not_yet_valid')
    }
  })
})
