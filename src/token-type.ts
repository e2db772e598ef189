/** The `typ` header every entitlement token carries (RFC 8725 §3.11 explicit typing). */
export const ENTITLEMENT_TOKEN_TYPE = 'entitlement+jwt'
