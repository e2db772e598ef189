import { SUBJECT_PATTERN } from 'entitle/protocol'
import { Hono } from 'hono'
import * as z from 'zod'
import type { AppEnv } from '../env.js'
import { DomainError } from '../errors.js'
import { idParam, KIB, limit, readJson } from '../json.js'
import type { Keyring } from '../keys.js'
import { adminKey } from '../middleware/admin-key.js'
import {
  CREDIT_GRANT_ID,
  creditGrantSchema,
  decisionSchema,
  FINGERPRINT,
  LEASE_ID,
  rotationSchema,
} from '../schemas.js'
import type { Services } from '../services/index.js'

const STATUSES = z.enum(['pending', 'approved', 'denied'])

/**
 * `/admin/*`, behind the admin key: customers, usage, revocation, credentials, devices, leases, credits, access
 * requests, keys.
 */
export function adminRoutes(services: Services, keyring: Keyring, key: string) {
  const router = new Hono<AppEnv>()
  router.use('*', adminKey(key))
  const customer = (c: Parameters<typeof idParam>[0]) => idParam(c, 'id', SUBJECT_PATTERN)

  router.get('/customers', (c) => c.json({ customers: services.customers.list() }))
  router.get('/customers/:id', (c) => c.json(services.customers.detail(customer(c))))
  router.get('/customers/:id/usage', (c) => c.json(services.customers.usage(customer(c))))
  router.post('/customers/:id/revoke', (c) => c.json(services.customers.revoke(customer(c))))
  router.post('/customers/:id/credentials', (c) => c.json(services.customers.rotateCredentials(customer(c))))
  router.post('/customers/:id/devices/:fingerprint/release', (c) =>
    c.json(services.devices.release(customer(c), idParam(c, 'fingerprint', FINGERPRINT))),
  )
  router.get('/customers/:id/leases', (c) => {
    const pool = c.req.query('pool')
    if (pool !== undefined && !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(pool))
      throw new DomainError('invalid', 'Invalid request', 'pool is a catalog name')
    return c.json({ leases: services.leases.list(customer(c), pool ?? null) })
  })
  // Credits: the balance and the ledger at any moment (?at=ISO time), grants, and voiding a grant.
  router.get('/customers/:id/credits', (c) => {
    const at = c.req.query('at')
    const moment = at === undefined ? undefined : Date.parse(at)
    if (
      moment !== undefined &&
      (!z.iso.datetime({ offset: true }).safeParse(at).success || Number.isNaN(moment))
    )
      throw new DomainError('invalid', 'Invalid request', 'at is an ISO 8601 date and time')
    return c.json(services.credits.ledger(customer(c), moment))
  })
  router.post('/customers/:id/credits/grants', limit(4 * KIB), async (c) => {
    const id = customer(c)
    const input = await readJson(c, creditGrantSchema)
    services.customers.detail(id)
    return c.json(services.credits.grant(id, input), 201)
  })
  router.post('/customers/:id/credits/grants/:grant/void', (c) =>
    c.json(services.credits.voidGrant(customer(c), idParam(c, 'grant', CREDIT_GRANT_ID))),
  )
  router.delete('/leases/:id', (c) => c.json(services.leases.release(null, idParam(c, 'id', LEASE_ID))))
  router.get('/access-requests', (c) => {
    const status = c.req.query('status')
    const parsed = STATUSES.optional().safeParse(status)
    if (!parsed.success)
      throw new DomainError('invalid', 'Invalid request', 'status is pending, approved or denied')
    return c.json({ requests: services.access.list(parsed.data) })
  })
  router.post('/access-requests/:id/decision', limit(8 * KIB), async (c) => {
    const { approve, by } = await readJson(c, decisionSchema)
    return c.json(services.access.decide(idParam(c, 'id', SUBJECT_PATTERN), approve, by))
  })
  router.post('/keys/rotate', limit(1 * KIB), async (c) => {
    // The body is optional: no body at all (no content type either) means the default rotation.
    const raw = await c.req.text()
    const none = raw === '' && c.req.header('content-type') === undefined
    const { immediate } = none ? { immediate: false } : await readJson(c, rotationSchema, raw)
    const rotated = await keyring.rotate({ immediate })
    return c.json({
      kid: rotated.kid,
      signsFrom: new Date(rotated.signsFrom).toISOString(),
      jwks: keyring.jwks(),
    })
  })
  return router
}
