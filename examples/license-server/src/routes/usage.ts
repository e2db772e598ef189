import { USAGE_LIMITS } from 'entitle/protocol'
import { Hono, type MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'
import { limit, readJson } from '../json.js'
import { usageBatchEnvelopeSchema } from '../schemas.js'
import type { Services } from '../services/index.js'

/** `POST /v1/usage`: a batch judged line by line (docs/metering.md); only a body that is not a batch fails whole. */
export function usageRoutes(services: Services, auth: MiddlewareHandler<AppEnv>) {
  const router = new Hono<AppEnv>()
  router.post('/v1/usage', limit(USAGE_LIMITS.batchBytes), auth, async (c) => {
    const batch = await readJson(c, usageBatchEnvelopeSchema)
    return c.json(services.usage.ingest(c.var.scope, batch))
  })
  return router
}
