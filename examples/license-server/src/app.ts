import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { REVOCATION_LIST_TYPE } from 'entitle'
import { SUBJECT_PATTERN, signRevocationList } from 'entitle/protocol'
import { type Context, Hono } from 'hono'
import { bodyLimit } from 'hono/body-limit'
import { streamSSE } from 'hono/streaming'
import * as z from 'zod'
import type { Catalog } from './catalog.js'
import type { Db } from './db.js'
import { createKeyring } from './keys.js'
import { createLicenseService, type LicenseEvent, type Scope, visible } from './licenses.js'
import { openApiDocument } from './openapi.js'
import { Problem, problemResponse } from './problem.js'
import {
  accessRequestSchema,
  activationSchema,
  decisionSchema,
  orderSchema,
  usageBatchEnvelopeSchema,
} from './schemas.js'

export interface LicenseServerOptions {
  db: Db
  catalog: Catalog
  /** The public URL of this server: `iss` of every token. */
  issuer: string
  /** `aud` of every token: the product the tokens are for. */
  audience: string
  /** Bearer key of the admin endpoints. */
  adminKey: string
  /** Shared secret of the order webhook's HMAC-SHA256 signature. */
  orderSecret: string
  /** Bearer key of the vendor's own multi-tenant app: reads and meters every customer. Optional. */
  serviceKey?: string
  /** Life of an online token. Default 3 600 s. */
  tokenTtlSec?: number
  /** An order signature older or newer than this is refused. Default 300 s. */
  signatureToleranceSec?: number
  /** How often an idle event stream sends a comment, so proxies keep it open. Default 15 000 ms. */
  heartbeatMs?: number
  now?: () => number
}

const KIB = 1024
const ID = SUBJECT_PATTERN

/** Reads a JSON body and validates it: `400` when it is not JSON, `422` with the failing paths when it is wrong. */
async function body<S extends z.core.$ZodType>(c: Context, schema: S, text?: string): Promise<z.output<S>> {
  const raw = text ?? (await c.req.text())
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    throw new Problem(400, 'Malformed JSON', 'the request body is not JSON')
  }
  const parsed = z.safeParse(schema, value)
  if (!parsed.success) {
    const errors = parsed.error.issues.map((issue) => ({
      path: issue.path.join('.'),
      message: issue.message,
    }))
    throw new Problem(422, 'Invalid request', `${errors.length} field(s) are invalid`, { errors })
  }
  return parsed.data
}

const limit = (maxSize: number) =>
  bodyLimit({
    maxSize,
    onError: (c) => problemResponse(c, new Problem(413, 'Body too large', `at most ${maxSize} bytes`)),
  })

function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest()
  const b = createHash('sha256').update(expected).digest()
  return timingSafeEqual(a, b)
}

/**
 * The reference license server: a Hono app over a SQLite repository. `app.fetch` is a web-standard handler;
 * `examples/license-server/src/main.ts` serves it with `@hono/node-server`. The API is in docs/server.md.
 */
export async function createLicenseServer(options: LicenseServerOptions) {
  const now = options.now ?? Date.now
  const keyring = createKeyring(options.db, now)
  await keyring.ensure()
  const service = createLicenseService({ ...options, keyring, now })
  const toleranceMs = (options.signatureToleranceSec ?? 300) * 1000
  const heartbeatMs = options.heartbeatMs ?? 15_000
  const streams = new Set<AbortController>()

  const app = new Hono()
  app.onError((error, c) => {
    if (error instanceof Problem) return problemResponse(c, error)
    console.error('license server error:', error)
    return problemResponse(c, new Problem(500, 'Internal error'))
  })
  app.notFound((c) =>
    problemResponse(c, new Problem(404, 'Not found', `no route ${c.req.method} ${c.req.path}`)),
  )

  const bearer = (c: Context) => /^Bearer (.+)$/.exec(c.req.header('authorization') ?? '')?.[1]
  /** The vendor's service key, or one customer's API key or license key. */
  function scopeOf(c: Context): Scope {
    const secret = bearer(c)
    if (secret === undefined)
      throw new Problem(401, 'Credentials required', 'send Authorization: Bearer <key>')
    if (options.serviceKey && sameSecret(secret, options.serviceKey)) return { kind: 'service' }
    const scope = service.scopeOfCustomerCredential(secret)
    if (scope === undefined) throw new Problem(401, 'Unknown credentials')
    return scope
  }
  function requireAdmin(c: Context): void {
    const secret = bearer(c)
    if (secret === undefined || !sameSecret(secret, options.adminKey))
      throw new Problem(401, 'Admin credentials required')
  }
  /** The customer a request is about, if the scope may act for them; else `403`, and nothing is read. */
  function customerFor(scope: Scope, subject: string | undefined): string {
    if (scope.kind === 'customer') {
      if (subject !== undefined && subject !== scope.customerId)
        throw new Problem(403, 'Forbidden', 'these credentials belong to another customer')
      return scope.customerId
    }
    if (subject === undefined) throw new Problem(422, 'Subject required', 'the service names the customer')
    return subject
  }
  const param = (c: Context, name: string): string => {
    const value = c.req.param(name)
    if (value === undefined || !ID.test(value)) throw new Problem(404, 'Not found', `no such ${name}`)
    return value
  }

  // --- public -------------------------------------------------------------------------------------------------

  app.get('/healthz', (c) => c.json({ ok: true }))
  app.get('/openapi.json', (c) => c.json(openApiDocument(options.issuer)))
  app.get('/.well-known/jwks.json', (c) => {
    c.header('cache-control', 'public, max-age=300')
    return c.json(keyring.jwks())
  })

  // --- orders (signed by the CRM, ERP or payment system) --------------------------------------------------------

  app.post('/v1/orders', limit(64 * KIB), async (c) => {
    const raw = await c.req.text()
    const header = c.req.header('entitle-signature') ?? ''
    const parts = Object.fromEntries(header.split(',').map((part) => part.split('=', 2) as [string, string]))
    const timestamp = Number(parts.t)
    if (!Number.isInteger(timestamp) || !parts.v1)
      throw new Problem(401, 'Signature required', 'send Entitle-Signature: t=<unix seconds>,v1=<hex hmac>')
    const expected = createHmac('sha256', options.orderSecret).update(`${timestamp}.${raw}`).digest('hex')
    if (!sameSecret(parts.v1, expected)) throw new Problem(401, 'Bad signature')
    if (Math.abs(now() - timestamp * 1000) > toleranceMs)
      throw new Problem(401, 'Stale signature', `signed more than ${toleranceMs / 1000} s from now`)
    const order = await body(c, orderSchema, raw)
    if (!service.rememberSignature(parts.v1, 2 * toleranceMs))
      throw new Problem(409, 'Replayed request', 'this exact signed request was received before')
    const bodyHash = createHash('sha256').update(JSON.stringify(order)).digest('hex')
    const { status, body: answer } = service.applyOrder(order, bodyHash)
    return c.json(answer, status)
  })

  const REVOCATION_LIST_MEDIA_TYPE = `application/${REVOCATION_LIST_TYPE}`

  // --- the SDK: tokens, revocations, events, usage (protocol v1, docs/client.md) -------------------------------

  app.get('/v1/entitlements/:subject', async (c) => {
    const customerId = customerFor(scopeOf(c), param(c, 'subject'))
    const { token, etag } = await service.entitlementToken(customerId)
    c.header('etag', etag)
    c.header('cache-control', 'private, no-store')
    const held = (c.req.header('if-none-match') ?? '').split(',').map((tag) => tag.trim().replace(/^W\//, ''))
    if (held.includes(etag)) return c.body(null, 304)
    return c.body(token, 200, { 'content-type': 'application/entitlement+jwt' })
  })

  app.get('/v1/revocations', async (c) => {
    const revoked = service.revocations(scopeOf(c))
    // A signed list is for an app with no network (client.importRevocations): it carries its own issue time.
    if ((c.req.header('accept') ?? '').includes(REVOCATION_LIST_MEDIA_TYPE)) {
      const { kid, key } = await keyring.signer()
      const list = await signRevocationList(
        { issuer: options.issuer, audience: options.audience, revoked, issuedAt: Math.floor(now() / 1000) },
        { key, kid, alg: 'EdDSA' },
      )
      return c.body(list, 200, { 'content-type': REVOCATION_LIST_MEDIA_TYPE, 'cache-control': 'no-store' })
    }
    const etag = `"${createHash('sha256').update(revoked.join(',')).digest('base64url').slice(0, 22)}"`
    c.header('etag', etag)
    if (c.req.header('if-none-match') === etag) return c.body(null, 304)
    return c.json({ revoked })
  })

  app.get('/v1/events', (c) => {
    const scope = scopeOf(c)
    const lastId = Number(c.req.header('last-event-id') ?? 0)
    const abort = new AbortController()
    streams.add(abort)
    return streamSSE(c, async (stream) => {
      const queue: LicenseEvent[] = []
      let wake: (() => void) | undefined
      const onEvent = (event: LicenseEvent) => {
        if (!visible(scope, event)) return
        queue.push(event)
        wake?.()
      }
      // Listen first, then replay what the client missed: nothing falls between the two.
      service.events.on('event', onEvent)
      const stop = () => {
        service.events.off('event', onEvent)
        streams.delete(abort)
        wake?.()
      }
      stream.onAbort(stop)
      abort.signal.addEventListener('abort', () => {
        stop()
        void stream.close()
      })
      const replay = Number.isSafeInteger(lastId) && lastId > 0 ? service.eventsSince(scope, lastId) : []
      queue.unshift(...replay.filter((event) => !queue.some((queued) => queued.id === event.id)))
      await stream.write(': connected\n\n')
      while (!stream.aborted && !stream.closed && !abort.signal.aborted) {
        while (queue.length > 0) {
          const event = queue.shift()!
          await stream.writeSSE({
            id: String(event.id),
            event: event.type,
            data: JSON.stringify({ subject: event.customerId }),
          })
        }
        const idle = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(true), heartbeatMs)
          wake = () => {
            clearTimeout(timer)
            resolve(false)
          }
        })
        wake = undefined
        if (idle && !abort.signal.aborted) await stream.write(': heartbeat\n\n')
      }
    })
  })

  app.post('/v1/usage', limit(1024 * KIB), async (c) => {
    const scope = scopeOf(c)
    const batch = await body(c, usageBatchEnvelopeSchema)
    return c.json(service.ingest(scope, batch))
  })

  // --- embedded apps: activation by license key and device ------------------------------------------------------

  app.post('/v1/activations', limit(8 * KIB), async (c) => {
    const { licenseKey, fingerprint } = await body(c, activationSchema)
    return c.json(await service.activate(licenseKey, fingerprint, false))
  })
  app.delete('/v1/activations', limit(8 * KIB), async (c) => {
    const { licenseKey, fingerprint } = await body(c, activationSchema)
    if (!service.deactivate(licenseKey, fingerprint))
      throw new Problem(404, 'Not activated', 'this device is not activated')
    return c.body(null, 204)
  })
  app.post('/v1/offline-licenses', limit(8 * KIB), async (c) => {
    const { licenseKey, fingerprint } = await body(c, activationSchema)
    return c.json(await service.activate(licenseKey, fingerprint, true))
  })

  // --- access requests ------------------------------------------------------------------------------------------

  app.post('/v1/access-requests', limit(16 * KIB), async (c) => {
    const scope = scopeOf(c)
    const input = await body(c, accessRequestSchema)
    const result = service.requestAccess(customerFor(scope, input.subject), input)
    return c.json({ id: result.id, status: result.status }, result.created ? 201 : 200)
  })

  // --- admin ----------------------------------------------------------------------------------------------------

  app.use('/admin/*', async (c, next) => {
    requireAdmin(c)
    await next()
  })
  app.get('/admin/customers', (c) => c.json({ customers: service.customers() }))
  app.get('/admin/customers/:id', (c) => c.json(service.customer(param(c, 'id'))))
  app.get('/admin/customers/:id/usage', (c) => c.json({ usage: service.usage(param(c, 'id')) }))
  app.post('/admin/customers/:id/revoke', (c) => c.json(service.revoke(param(c, 'id'))))
  app.post('/admin/customers/:id/credentials', (c) => c.json(service.rotateCredentials(param(c, 'id'))))
  app.get('/admin/access-requests', (c) => {
    const status = c.req.query('status')
    if (status !== undefined && !['pending', 'approved', 'denied'].includes(status))
      throw new Problem(422, 'Invalid request', 'status is pending, approved or denied')
    return c.json({ requests: service.accessRequests(status as 'pending' | undefined) })
  })
  app.post('/admin/access-requests/:id/decision', limit(8 * KIB), async (c) => {
    const { approve, by } = await body(c, decisionSchema)
    return c.json(service.decideAccess(param(c, 'id'), approve, by))
  })
  app.post('/admin/keys/rotate', async (c) => c.json({ kid: await keyring.rotate(), jwks: keyring.jwks() }))

  return {
    app,
    service,
    keyring,
    /** Ends every open event stream (a server shutting down). */
    closeStreams(): void {
      for (const stream of [...streams]) stream.abort()
    },
  }
}

export type LicenseServer = Awaited<ReturnType<typeof createLicenseServer>>
