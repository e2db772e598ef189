import { Hono } from 'hono'
import type { AppEnv } from '../env.js'
import { KIB, limit, readJson } from '../json.js'
import { orderSignature } from '../middleware/order-signature.js'
import { orderSchema } from '../schemas.js'
import type { Services } from '../services/index.js'

/** `POST /v1/orders`: orders from the CRM, ERP or payment system, signed with the order secret. */
export function orderRoutes(
  services: Services,
  options: { secret: string; toleranceMs: number; now: () => number },
) {
  const router = new Hono<AppEnv>()
  router.post(
    '/v1/orders',
    limit(64 * KIB),
    orderSignature({ ...options, orders: services.orders }),
    async (c) => {
      const order = await readJson(c, orderSchema, c.var.rawBody)
      const { status, body } = services.orders.apply(order)
      return c.json(body, status)
    },
  )
  return router
}
