/**
 * The `typ` header every entitlement token carries (RFC 8725 §3.11 explicit typing).
 *
 * @example
 * ```ts
 * new SignJWT(claims).setProtectedHeader({ alg: 'EdDSA', typ: ENTITLEMENT_TOKEN_TYPE, kid })
 * ```
 */
export const ENTITLEMENT_TOKEN_TYPE = 'entitlement+jwt'
