import { Hono, type MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'
import { DomainError } from '../errors.js'
import { idParam, KIB, limit, readJson } from '../json.js'
import { LEASE_ID, leaseRequestSchema } from '../schemas.js'
import { customerFor, type Scope } from '../services/credentials.js'
import type { Services } from '../services/index.js'

/** The customer a scope acts for on a lease it names: any (`null`) for the service. */
const actingFor = (scope: Scope) => (scope.kind === 'service' ? null : scope.customerId)

/**
 * Floating licenses: `POST /v1/leases` takes a seat of a pool (`201`, or `200` for the seat this holder holds;
 * `409` when the pool is full, with how many hold it and when to retry), `POST /v1/leases/{id}/heartbeat` renews
 * it (`410` when it ended for good), `DELETE /v1/leases/{id}` gives it back.
 */
export function leaseRoutes(services: Services, auth: MiddlewareHandler<AppEnv>) {
  const router = new Hono<AppEnv>()
  router.post('/v1/leases', limit(8 * KIB), auth, async (c) => {
    const input = await readJson(c, leaseRequestSchema)
    const who = customerFor(c.var.scope, input.subject)
    if ('refused' in who)
      throw who.refused === 'forbidden'
        ? new DomainError('forbidden', 'Forbidden', 'these credentials belong to another customer')
        : new DomainError('invalid', 'Subject required', 'the service names the customer')
    const { created, answer } = await services.leases.acquire(who.customerId, {
      pool: input.pool,
      holder: input.holder,
      borrowSec: input.borrow,
      metadata: input.metadata,
    })
    return c.json(answer, created ? 201 : 200)
  })
  router.post('/v1/leases/:id/heartbeat', limit(1 * KIB), auth, async (c) =>
    c.json(await services.leases.heartbeat(actingFor(c.var.scope), idParam(c, 'id', LEASE_ID))),
  )
  router.delete('/v1/leases/:id', auth, (c) => {
    services.leases.release(actingFor(c.var.scope), idParam(c, 'id', LEASE_ID))
    return c.body(null, 204)
  })
  return router
}
