/** `jose.jwtVerify`'s options with the checks our verifier makes (algorithms, issuer, audience, typ, claims). */
export const joseOptions = (issuer) => ({
  algorithms: ['EdDSA', 'Ed25519', 'ES256'],
  issuer: issuer.issuer,
  audience: issuer.audience,
  typ: 'entitlement+jwt',
  requiredClaims: ['iat', 'exp', 'sub', 'jti'],
})
