/**
 * The `typ` header every entitlement token carries (RFC 8725 §3.11 explicit typing).
 *
 * @example
 * ```ts
 * new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: ENTITLEMENT_TOKEN_TYPE, kid })
 * ```
 */
export const ENTITLEMENT_TOKEN_TYPE = 'entitlement+jwt'

/**
 * The `typ` header of a signed revocation list: the license server's keys sign it, and explicit typing keeps it
 * from ever being taken for an entitlement token, or a token for a list.
 *
 * @example
 * ```ts
 * new SignJWT({ revoked: ['jti-1'] }).setProtectedHeader({ alg: 'EdDSA', typ: REVOCATION_LIST_TYPE, kid })
 * ```
 */
export const REVOCATION_LIST_TYPE = 'revocation-list+jwt'

/**
 * The `typ` header of a signed lease: proof that a holder holds one seat of a floating-license pool until `exp`.
 * Signed by the same keys as entitlement tokens, and typed so that neither can pass for the other.
 *
 * @example
 * ```ts
 * new SignJWT({ sub, lease: { id, pool, holder } }).setProtectedHeader({ alg: 'EdDSA', typ: LEASE_TOKEN_TYPE, kid })
 * ```
 */
export const LEASE_TOKEN_TYPE = 'lease+jwt'
