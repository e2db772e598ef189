import { Hono, type MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'
import { DomainError } from '../errors.js'
import { KIB, limit, readJson } from '../json.js'
import { accessRequestSchema } from '../schemas.js'
import { customerFor } from '../services/credentials.js'
import type { Services } from '../services/index.js'

/** `POST /v1/access-requests`: a user asks for a feature. The service names the customer; a customer need not. */
export function accessRequestRoutes(services: Services, auth: MiddlewareHandler<AppEnv>) {
  const router = new Hono<AppEnv>()
  router.post('/v1/access-requests', limit(16 * KIB), auth, async (c) => {
    const input = await readJson(c, accessRequestSchema)
    const who = customerFor(c.var.scope, input.subject)
    if ('refused' in who)
      throw who.refused === 'forbidden'
        ? new DomainError('forbidden', 'Forbidden', 'these credentials belong to another customer')
        : new DomainError('invalid', 'Subject required', 'the service names the customer')
    const result = services.access.request(who.customerId, input)
    return c.json({ id: result.id, status: result.status }, result.created ? 201 : 200)
  })
  return router
}
