import { createMiddleware } from 'hono/factory'
import type { AppEnv } from '../env.js'
import { DomainError } from '../errors.js'
import { hashSecret, sameSecret } from '../services/credentials.js'
import type { CustomerService } from '../services/customers.js'

/** The bearer credential of a request, if it sent one. */
export function bearerOf(header: string | undefined): string | undefined {
  return /^Bearer (\S+)$/.exec(header ?? '')?.[1]
}

/**
 * Resolves `Authorization: Bearer …` to who is asking, into `c.var.scope`: the vendor's service key (every
 * customer), or one customer's API key or license key. No credential or an unknown one is a `401`.
 */
export function credentials(customers: CustomerService, serviceKey: string | undefined) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const secret = bearerOf(c.req.header('authorization'))
    if (secret === undefined)
      throw new DomainError('unauthenticated', 'Credentials required', 'send Authorization: Bearer <key>')
    const scope =
      serviceKey !== undefined && sameSecret(secret, serviceKey)
        ? ({ kind: 'service' } as const)
        : customers.scopeOfCredential(secret)
    if (scope === undefined) throw new DomainError('unauthenticated', 'Unknown credentials')
    c.set('scope', scope)
    c.set('credential', hashSecret(secret))
    await next()
  })
}
