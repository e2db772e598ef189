/**
 * Every way verifying a token, talking to the license server or metering usage can fail, as a stable string. Branch on these, never on messages:
 * messages are for people and may change in any release; codes change only in a major release.
 * Each code is documented in `docs/errors.md`.
 */
export type EntitlementErrorCode =
  /** Not a string, or not three base64url segments, or a segment that does not decode to the expected JSON. */
  | 'token_malformed'
  /** Longer than `maxTokenLength`; rejected before any parsing. */
  | 'token_too_large'
  /** The header's `alg` is not in the verifier's allowlist (including `none` and every HMAC algorithm). */
  | 'algorithm_not_allowed'
  /** The header's `typ` is missing or is not `entitlement+jwt`. */
  | 'type_invalid'
  /** The header names a critical extension (`crit`) this library does not implement. */
  | 'header_unsupported'
  /** No trusted key matches the header's `kid` and `alg`. */
  | 'key_unknown'
  /** A trusted key exists but cannot be used with the token's algorithm (for example an RSA key for `EdDSA`). */
  | 'key_invalid'
  /** The remote JWK Set could not be fetched or is not a valid JWK Set. */
  | 'jwks_unavailable'
  /** The signature does not verify with the trusted key. */
  | 'signature_invalid'
  /** `exp` has passed (beyond the clock tolerance). */
  | 'token_expired'
  /** `nbf` or `iat` lies in the future (beyond the clock tolerance). */
  | 'token_not_yet_valid'
  /** `iss` is not the expected issuer. */
  | 'issuer_invalid'
  /** `aud` does not include the expected audience. */
  | 'audience_invalid'
  /** The signature is valid but the claims do not match the entitlement token format. */
  | 'claims_invalid'
  /** The license server could not be reached, timed out, or answered 5xx/429 (the client retries with backoff). */
  | 'server_unavailable'
  /** The license server refused the request (401, 403, another 4xx): credentials or configuration. */
  | 'server_rejected'
  /** The client's storage failed to read or write; checks go on from memory. */
  | 'storage_failed'
  /** The single-tenant client's own `token()` source failed (a license file missing or unreadable). */
  | 'token_unavailable'
  /** `record()` was given a metric, amount, dimensions or properties it cannot send (thrown; nothing is counted). */
  | 'usage_invalid'
  /** The license server refused usage lines (400, 422, or per line): they are set aside, not dropped. */
  | 'usage_rejected'
  /** Usage could not be queued (the queue is full even after aggregating harder, or the client is closed). */
  | 'usage_dropped'
  /** The shared usage store (`entitle/redis`) failed or timed out; `consume()` followed `fleet.onStoreError`. */
  | 'store_unavailable'
  /** The license server refused the event stream (`429` too many, or no stream here); the client polls for changes. */
  | 'events_refused'

/** A verification failure with a stable {@link EntitlementErrorCode}. */
export class EntitlementError extends Error {
  /** The stable code to branch on. */
  readonly code: EntitlementErrorCode
  /**
   * `server_unavailable` only: how long the license server asked the client to wait (its `Retry-After`, in
   * milliseconds, at most a day), when it said.
   */
  declare readonly retryAfterMs?: number

  /**
   * @example
   * ```ts
   * try {
   *   await verifyEntitlementToken(token, { keys: jwks })
   * } catch (error) {
   *   if (error instanceof EntitlementError && error.code === 'token_expired') refreshLicense()
   * }
   * ```
   */
  constructor(
    code: EntitlementErrorCode,
    message: string,
    options?: { cause?: unknown; retryAfterMs?: number | undefined },
  ) {
    super(message, options)
    this.name = 'EntitlementError'
    this.code = code
    // Set only when the server said, so every other error logs as it always did.
    if (options?.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs
  }
}

/**
 * `true` when `value` is an {@link EntitlementError}, optionally with one of the given codes.
 *
 * @example
 * ```ts
 * const result = await verifier.verify(token).catch((error: unknown) => {
 *   if (isEntitlementError(error, 'token_expired', 'token_not_yet_valid')) return undefined
 *   throw error
 * })
 * ```
 */
export function isEntitlementError(
  value: unknown,
  ...codes: EntitlementErrorCode[]
): value is EntitlementError {
  return value instanceof EntitlementError && (codes.length === 0 || codes.includes(value.code))
}
