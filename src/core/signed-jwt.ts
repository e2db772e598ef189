import { type CompactVerifyResult, compactVerify, type JWTVerifyGetKey } from 'jose'
import { EntitlementError } from './errors.js'

/*
 * A compact JWT whose signature jose checks (the algorithm allowlist, the key, `crit`, the signature itself), read
 * as a JWT here. jose's `jwtVerify` is `compactVerify` plus a claims-set parser and the JWT claim rules; the rules
 * are in `registered-claims.ts`, written for the three kinds of signed token this package reads, so browser bundles
 * no longer carry jose's general ones (its duration strings, `maxTokenAge`, `subject`): 0.8–0.9 KB gzipped a bundle.
 */

/** A verified compact JWT: its protected header and its payload. */
export interface SignedJwt {
  readonly header: CompactVerifyResult['protectedHeader']
  readonly payload: Record<string, unknown>
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Verifies `token`'s signature with jose, then reads its payload as a JWT claims set. Errors come in jose's order:
 * jose's own first (as jose throws them), then an unencoded payload (RFC 7797, which a JWT may not use) and a
 * payload that is not a JSON object, both `token_malformed`.
 */
export async function verifySignedJwt(
  token: string,
  key: JWTVerifyGetKey,
  algorithms: readonly string[],
): Promise<SignedJwt> {
  const { protectedHeader, payload } = await verifySignature(token, key, algorithms)
  if (protectedHeader.b64 === false)
    throw new EntitlementError('token_malformed', 'a JWT may not have an unencoded payload (b64: false)')
  let parsed: unknown
  try {
    parsed = JSON.parse(strictUtf8.decode(payload))
  } catch (cause) {
    throw new EntitlementError('token_malformed', 'the token payload is not JSON', { cause })
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new EntitlementError('token_malformed', 'the token payload is not a JSON object')
  return { header: protectedHeader, payload: parsed as Record<string, unknown> }
}

/**
 * jose's signature check. With no `kid`, several trusted keys may fit: jose hands them over, to be tried in turn.
 * jose's promise is handed on, not awaited here: every load verifies a token, and each async step is a promise
 * made and a resumption.
 */
function verifySignature(
  token: string,
  key: JWTVerifyGetKey,
  algorithms: readonly string[],
): Promise<CompactVerifyResult> {
  const options = { algorithms: algorithms as string[] }
  return compactVerify(token, key, options).catch((error: unknown) => eachMatchingKey(token, options, error))
}

/** jose's answer to a token that several trusted keys fit: each of them tried, until one verifies it. */
async function eachMatchingKey(
  token: string,
  options: { algorithms: string[] },
  error: unknown,
): Promise<CompactVerifyResult> {
  if ((error as { code?: unknown }).code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw error
  let last: unknown = error
  for await (const candidate of error as AsyncIterable<CryptoKey>) {
    try {
      return await compactVerify(token, candidate, options)
    } catch (candidateError) {
      last = candidateError
      if ((candidateError as { code?: unknown }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') break
    }
  }
  throw last
}
