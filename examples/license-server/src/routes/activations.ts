import { Hono } from 'hono'
import type { AppEnv } from '../env.js'
import { KIB, limit, readJson } from '../json.js'
import { activationSchema } from '../schemas.js'
import type { Services } from '../services/index.js'

/** Embedded and desktop apps: a device activated by the license key, deactivated, or given an offline license. */
export function activationRoutes(services: Services) {
  const router = new Hono<AppEnv>()
  router.post('/v1/activations', limit(8 * KIB), async (c) => {
    const { licenseKey, fingerprint } = await readJson(c, activationSchema)
    return c.json(await services.devices.activate(licenseKey, fingerprint, false))
  })
  router.delete('/v1/activations', limit(8 * KIB), async (c) => {
    const { licenseKey, fingerprint } = await readJson(c, activationSchema)
    services.devices.deactivate(licenseKey, fingerprint)
    return c.body(null, 204)
  })
  router.post('/v1/offline-licenses', limit(8 * KIB), async (c) => {
    const { licenseKey, fingerprint } = await readJson(c, activationSchema)
    return c.json(await services.devices.activate(licenseKey, fingerprint, true))
  })
  return router
}
