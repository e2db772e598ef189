import { createMiddleware } from 'hono/factory'
import type { AppEnv } from '../env.js'
import { DomainError } from '../errors.js'
import { sameSecret } from '../services/credentials.js'
import { bearerOf } from './credentials.js'

/** Lets through only `Authorization: Bearer <admin key>`, compared in constant time. */
export function adminKey(key: string) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const secret = bearerOf(c.req.header('authorization'))
    if (secret === undefined || !sameSecret(secret, key))
      throw new DomainError('unauthenticated', 'Admin credentials required')
    await next()
  })
}
