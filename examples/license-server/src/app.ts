import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { Catalog } from './catalog.js'
import type { Db } from './db.js'
import type { AppEnv } from './env.js'
import { DomainError } from './errors.js'
import { createKeyring, type KeyringOptions } from './keys.js'
import { credentials } from './middleware/credentials.js'
import { problemResponse } from './problem.js'
import { accessRequestRoutes } from './routes/access-requests.js'
import { activationRoutes } from './routes/activations.js'
import { adminRoutes } from './routes/admin.js'
import { eventRoutes } from './routes/events.js'
import { leaseRoutes } from './routes/leases.js'
import { orderRoutes } from './routes/orders.js'
import { publicRoutes } from './routes/public.js'
import { tokenRoutes } from './routes/tokens.js'
import { usageRoutes } from './routes/usage.js'
import { assertSecret } from './secrets.js'
import { createServices } from './services/index.js'

export interface LicenseServerOptions {
  db: Db
  catalog: Catalog
  /** The public URL of this server: `iss` of every token. */
  issuer: string
  /** `aud` of every token: the product the tokens are for. */
  audience: string
  /** Bearer key of the admin endpoints: at least 32 bytes. */
  adminKey: string
  /** Shared secret of the order webhook's HMAC-SHA256 signature: at least 32 bytes. */
  orderSecret: string
  /** Bearer key of the vendor's own multi-tenant app: reads and meters every customer. Optional; 32 bytes. */
  serviceKey?: string | undefined
  /** Life of an online token. Default 3 600 s. */
  tokenTtlSec?: number
  /** An order signature older or newer than this is refused. Default 300 s. */
  signatureToleranceSec?: number
  /** How often an idle event stream sends a comment, so proxies keep it open. Default 15 000 ms. */
  heartbeatMs?: number
  /** Event streams the service key may hold open at once: one per instance of the vendor's app. Default 256. */
  maxStreamsPerService?: number
  /** Event streams one customer's credential may hold open at once. Default 16. */
  maxStreamsPerCustomer?: number
  /** Key rotation: how long a new key is published before it signs, and a retired key after its last token. */
  keys?: KeyringOptions
  now?: () => number
}

/**
 * The reference license server: a Hono app composed of routers (`routes/`), cross-cutting checks in
 * `middleware/`, services by concept (`services/`) over one repository, and one mapping of domain errors to
 * problem+json. `app.fetch` is a web-standard handler; `start.ts` serves it with `@hono/node-server`. The API is
 * in docs/server.md.
 */
export async function createLicenseServer(options: LicenseServerOptions) {
  assertSecret('ENTITLE_ADMIN_KEY', options.adminKey)
  assertSecret('ENTITLE_ORDER_SECRET', options.orderSecret)
  if (options.serviceKey !== undefined) assertSecret('ENTITLE_SERVICE_KEY', options.serviceKey)
  const now = options.now ?? Date.now
  const keyring = createKeyring(options.db, now, options.keys)
  await keyring.ensure()
  const services = createServices({
    db: options.db,
    catalog: options.catalog,
    keyring,
    issuer: options.issuer,
    audience: options.audience,
    tokenTtlSec: options.tokenTtlSec ?? 3600,
    now,
  })
  const auth = credentials(services.customers, options.serviceKey)
  const events = eventRoutes(services, auth, {
    heartbeatMs: options.heartbeatMs ?? 15_000,
    maxPerService: options.maxStreamsPerService ?? 256,
    maxPerCustomer: options.maxStreamsPerCustomer ?? 16,
  })

  const app = new Hono<AppEnv>()
  app.onError((error) => {
    if (error instanceof HTTPException)
      return problemResponse(
        new DomainError(error.status === 413 ? 'too_large' : 'malformed', 'Bad request', error.message),
      )
    if (!(error instanceof DomainError)) console.error('license server error:', error)
    return problemResponse(error)
  })
  app.notFound((c) =>
    problemResponse(new DomainError('not_found', 'Not found', `no route ${c.req.method} ${c.req.path}`)),
  )
  app.route('/', publicRoutes(keyring, options.issuer))
  app.route(
    '/',
    orderRoutes(services, {
      secret: options.orderSecret,
      toleranceMs: (options.signatureToleranceSec ?? 300) * 1000,
      now,
    }),
  )
  app.route('/', tokenRoutes(services, auth))
  app.route('/', events.router)
  app.route('/', usageRoutes(services, auth))
  app.route('/', activationRoutes(services))
  app.route('/', leaseRoutes(services, auth))
  app.route('/', accessRequestRoutes(services, auth))
  app.route('/admin', adminRoutes(services, keyring, options.adminKey))

  return { app, services, keyring, closeStreams: events.closeAll }
}

export type LicenseServer = Awaited<ReturnType<typeof createLicenseServer>>
