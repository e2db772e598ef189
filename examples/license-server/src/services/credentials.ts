import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/**
 * Who is asking: the vendor's multi-tenant app (every customer) or one customer, by its API key (a server-side
 * install) or its license key (`device`: an embedded or desktop app, which gets device-bound tokens only).
 */
export type Scope =
  | { readonly kind: 'service' }
  | { readonly kind: 'customer'; readonly customerId: string; readonly device?: true }

/** A secret for a person or a program to hold, and the hash the database keeps instead. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}

/** A new credential: a prefix that says what it is (`ck_`, `lk_`) and 192 random bits. */
export const newSecret = (prefix: string) => `${prefix}_${randomBytes(24).toString('base64url')}`

/** Compares two secrets in constant time, whatever their lengths (both are hashed first). */
export function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

/** The customer a request is about, if the scope may act for them. */
export function customerFor(
  scope: Scope,
  subject: string | undefined,
): { customerId: string } | { refused: 'forbidden' | 'subject_required' } {
  if (scope.kind === 'customer') {
    if (subject !== undefined && subject !== scope.customerId) return { refused: 'forbidden' }
    return { customerId: scope.customerId }
  }
  return subject === undefined ? { refused: 'subject_required' } : { customerId: subject }
}
