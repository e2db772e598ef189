import { compactVerify, importJWK } from 'jose'
import { describe, expect, it } from 'vitest'
import { createKeyResolver } from '../../src/core/keys.js'
import { createEntitlementVerifier } from '../../src/index.js'
import { frozen, NOW_SEC, rejectionCode, signRawEd25519 } from '../helpers.js'

// RFC 8037, Appendix A.1, A.4 and A.5: the Ed25519 key and the JWS over "Example of Ed25519 signing".
const RFC_PRIVATE_JWK = {
  kty: 'OKP',
  crv: 'Ed25519',
  d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A',
  x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
}
const RFC_PUBLIC_JWK = { kty: 'OKP', crv: 'Ed25519', x: RFC_PRIVATE_JWK.x }
const RFC_JWS =
  'eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.' +
  'hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg'

describe('RFC 8037 Ed25519 conformance', () => {
  it('verifies the RFC example JWS with the key handling and algorithm allowlist of the verifier', async () => {
    const { payload, protectedHeader } = await compactVerify(RFC_JWS, createKeyResolver(RFC_PUBLIC_JWK), {
      algorithms: ['EdDSA', 'Ed25519', 'ES256'],
    })
    expect(protectedHeader).toEqual({ alg: 'EdDSA' })
    expect(new TextDecoder().decode(payload)).toBe('Example of Ed25519 signing')
  })

  it('reproduces the RFC signature byte for byte from the RFC private key (Ed25519 is deterministic)', async () => {
    const privateKey = (await importJWK(RFC_PRIVATE_JWK, 'EdDSA')) as CryptoKey
    const [h, p, s] = RFC_JWS.split('.') as [string, string, string]
    const signature = await crypto.subtle.sign('Ed25519', privateKey, new TextEncoder().encode(`${h}.${p}`))
    expect(Buffer.from(signature).toString('base64url')).toBe(s)
  })

  it('rejects the RFC example with one payload byte changed', async () => {
    const [h, , s] = RFC_JWS.split('.')
    const altered = `${h}.${Buffer.from('Example of Ed25519 signinG').toString('base64url')}.${s}`
    await expect(compactVerify(altered, createKeyResolver(RFC_PUBLIC_JWK))).rejects.toMatchObject({
      code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED',
    })
  })

  it('verifies an entitlement token signed with the RFC key, and refuses the RFC JWS itself as no entitlement', async () => {
    const privateKey = (await importJWK(RFC_PRIVATE_JWK, 'EdDSA')) as CryptoKey
    const verifier = createEntitlementVerifier({
      keys: RFC_PUBLIC_JWK,
      issuer: 'https://issuer.example',
      audience: 'app',
      now: frozen,
    })
    const token = await signRawEd25519(
      privateKey,
      { alg: 'EdDSA', typ: 'entitlement+jwt' },
      {
        iss: 'https://issuer.example',
        sub: 'rfc',
        aud: 'app',
        iat: NOW_SEC,
        exp: NOW_SEC + 60,
        jti: '8037',
        ent: { v: 1, plan: { id: 'rfc' }, features: { signing: true } },
      },
    )
    expect((await verifier.verify(token)).features.has('signing')).toBe(true)
    // A valid signature over a sentence is not a claims set: a malformed entitlement token.
    expect(await rejectionCode(verifier.verify(RFC_JWS))).toBe('token_malformed')
  })
})
