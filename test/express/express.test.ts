import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import express5 from 'express'
import express4 from 'express4'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { EntitlementClaim } from '../../src/core/claims.js'
import { requireEntitlement } from '../../src/express/index.js'
import { createEntitlements, type EntitlementsClient, metering } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'

const SERVER = 'https://license.express.test'
let issuer: Awaited<ReturnType<typeof createTestIssuer>>
const reported: Array<{ subject: string; metric: string; amount: number }> = []
let servers: Server[] = []
let clients: EntitlementsClient[] = []

beforeAll(async () => {
  issuer = await createTestIssuer({ issuer: SERVER, audience: 'app' })
})
afterEach(async () => {
  for (const server of servers) {
    server.closeAllConnections()
    server.close()
  }
  await Promise.all(clients.map((client) => client.close({ deadlineMs: 0 })))
  servers = []
  clients = []
  reported.length = 0
})

const resetsAt = () => Math.floor(Date.now() / 1000) + 86_400
const PLANS: Record<string, () => Partial<EntitlementClaim>> = {
  acme: () => ({
    plan: { id: 'team' },
    features: {
      export: true,
      reports: { roles: ['admin'] },
      'api-calls': { cap: { limit: 3, period: 'month', used: 0, resetsAt: resetsAt() } },
    },
    upgrades: { sso: { plan: 'business', url: 'https://vendor.test/upgrade' } },
  }),
  42: () => ({ plan: { id: 'team' }, features: { export: true } }),
  bigcorp: () => ({ plan: { id: 'enterprise' }, features: { export: true, sso: true } }),
}

/** A client whose license server runs in-process: tokens per customer, garbage for one, usage accepted. */
function client(): EntitlementsClient {
  const made = createEntitlements({
    metering,
    server: { url: SERVER, revocationIntervalMs: 0 },
    keys: issuer.jwks,
    issuer: SERVER,
    audience: 'app',
    usage: { flushIntervalMs: 60_000 },
    platform: {
      fetch: async (input, init) => {
        const request = new Request(input, init)
        const path = new URL(request.url).pathname
        if (path === '/v1/revocations') return Response.json({ revoked: [] })
        if (path === '/v1/usage') {
          reported.push(...((await request.json()) as { lines: typeof reported }).lines)
          return Response.json({ at: Date.now() })
        }
        const subject = decodeURIComponent(path.split('/').pop()!)
        if (subject === 'forger') return new Response('not.a.token')
        const plan = PLANS[subject]
        if (!plan) return new Response(null, { status: 404 })
        return new Response(await issuer.issue(plan(), { subject }))
      },
    },
  })
  clients.push(made)
  return made
}

async function listen(app: { listen: (port: number, host: string) => Server }) {
  const server = app.listen(0, '127.0.0.1')
  servers.push(server)
  await new Promise((resolve) => server.once('listening', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const get = (base: string, path: string, customer?: string) =>
  fetch(`${base}${path}`, { headers: customer ? { 'x-customer-id': customer } : {} })

describe.each([
  ['Express 5', express5],
  ['Express 4', express4 as unknown as typeof express5],
])('entitle/express on %s', (_name, express) => {
  function app(entitlements: EntitlementsClient) {
    const made = express()
    // Behind a trusted proxy that sets X-Customer-Id (and strips it from what clients send).
    const trusted = { customerHeader: 'x-customer-id' }
    made.get('/export', requireEntitlement(entitlements, 'export', trusted), (req, res) => {
      res.json({ ok: true, plan: req.entitlement?.plan, source: req.entitlement?.source })
    })
    made.get('/sso', requireEntitlement(entitlements, 'sso', trusted), (_req, res) => {
      res.json({ ok: true })
    })
    made.get(
      '/search',
      requireEntitlement(entitlements, 'api-calls', { ...trusted, consume: 1 }),
      (req, res) => {
        res.json({ remaining: req.entitlement?.remaining })
      },
    )
    made.get(
      '/bulk',
      requireEntitlement(entitlements, 'api-calls', { ...trusted, consume: (req) => Number(req.query.n) }),
      (_req, res) => {
        res.json({ ok: true })
      },
    )
    made.get(
      '/flaky',
      requireEntitlement(entitlements, 'api-calls', { ...trusted, consume: 1, recordOn: 'success' }),
      (req, res) => {
        res.status(req.query.fail ? 500 : 200).json({ ok: !req.query.fail })
      },
    )
    // An authentication middleware in front: the default context reads req.user.
    made.get(
      '/reports',
      (req, _res, next) => {
        ;(req as unknown as { user: unknown }).user = {
          id: 'acme',
          roles: String(req.query.roles ?? '').split(','),
        }
        next()
      },
      requireEntitlement(entitlements, 'reports'),
      (_req, res) => {
        res.json({ ok: true })
      },
    )
    // The default identity: what the app's own authentication set, in a query-driven stand-in for it.
    made.get(
      '/whoami',
      (req, res, next) => {
        const { user, auth, locals } = req.query as Record<string, string | undefined>
        if (user !== undefined)
          (req as unknown as { user: unknown }).user = { id: /^\d+$/.test(user) ? Number(user) : user }
        if (auth !== undefined) (req as unknown as { auth: unknown }).auth = { sub: auth }
        if (locals !== undefined) res.locals.customerId = locals
        next()
      },
      requireEntitlement(entitlements, 'export'),
      (req, res) => {
        res.json({ subject: req.entitlement?.subject, plan: req.entitlement?.plan })
      },
    )
    return made
  }

  it('lets an entitled request through with the decision on req.entitlement', async () => {
    const base = await listen(app(client()))
    const response = await get(base, '/export', 'acme')
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ ok: true, plan: 'team', source: 'fresh' })
  })

  it('answers 403 problem+json with the upgrade hint for a feature not in the plan', async () => {
    const base = await listen(app(client()))
    const response = await get(base, '/sso', 'acme')
    expect(response.status).toBe(403)
    expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    expect(await response.json()).toMatchObject({
      status: 403,
      title: 'Not entitled',
      detail: 'not_in_plan',
      upgrade: { plan: 'business', url: 'https://vendor.test/upgrade' },
    })
  })

  it('consumes the cap and answers 429 with Retry-After and the IETF RateLimit fields once it is spent', async () => {
    const base = await listen(app(client()))
    const remaining = []
    for (let i = 0; i < 3; i++) {
      const response = await get(base, '/search', 'acme')
      expect(response.status).toBe(200)
      remaining.push((await response.json()).remaining)
      expect(response.headers.get('ratelimit-policy')).toBe('"api-calls";q=3;w=2592000')
    }
    expect(remaining).toEqual([2, 1, 0])
    const spent = await get(base, '/search', 'acme')
    expect(spent.status).toBe(429)
    expect(Number(spent.headers.get('retry-after'))).toBeGreaterThan(86_000)
    expect(spent.headers.get('ratelimit')).toMatch(/^"api-calls";r=0;t=\d+$/)
    expect(await spent.json()).toMatchObject({ status: 429, detail: 'usage_cap_reached', limit: 3, used: 3 })
  })

  it('consumes an amount computed from the request, and refuses one that is not a number', async () => {
    const base = await listen(app(client()))
    expect((await get(base, '/bulk?n=2', 'acme')).status).toBe(200)
    expect((await get(base, '/bulk?n=2', 'acme')).status).toBe(429)
    const bad = await get(base, '/bulk?n=lots', 'acme')
    expect(bad.status).toBe(400)
    expect((await bad.json()).title).toBe('Invalid amount')
  })

  it("recordOn 'success': a failed request costs nothing", async () => {
    const entitlements = client()
    const base = await listen(app(entitlements))
    expect((await get(base, '/flaky?fail=1', 'acme')).status).toBe(500)
    expect((await get(base, '/flaky?fail=1', 'acme')).status).toBe(500)
    for (let i = 0; i < 3; i++) expect((await get(base, '/flaky', 'acme')).status).toBe(200)
    expect((await get(base, '/flaky', 'acme')).status).toBe(429)
    await entitlements.flush()
    expect(reported.reduce((sum, line) => sum + line.amount, 0)).toBe(3)
  })

  it('reads the customer and roles from req.user by default', async () => {
    const base = await listen(app(client()))
    expect((await get(base, '/reports?roles=admin')).status).toBe(200)
    const viewer = await get(base, '/reports?roles=viewer')
    expect(viewer.status).toBe(403)
    expect((await viewer.json()).detail).toBe('role_missing')
  })

  it('never takes the customer from a client header by default: req.user = { id: 42 } is customer 42', async () => {
    const base = await listen(app(client()))
    const spoofed = await get(base, '/whoami?user=42', 'bigcorp')
    expect(spoofed.status).toBe(200)
    expect(await spoofed.json()).toEqual({ subject: '42', plan: 'team' })
    // An app that forgot its authentication: a header alone is nobody, not bigcorp.
    const anonymous = await get(base, '/whoami', 'bigcorp')
    expect(anonymous.status).toBe(401)
    expect(await anonymous.json()).toMatchObject({ title: 'Customer unknown' })
  })

  it('reads req.auth.sub (express-jwt) and res.locals.customerId when there is no req.user', async () => {
    const base = await listen(app(client()))
    expect(await (await get(base, '/whoami?auth=acme', 'bigcorp')).json()).toEqual({
      subject: 'acme',
      plan: 'team',
    })
    expect(await (await get(base, '/whoami?locals=acme', 'bigcorp')).json()).toEqual({
      subject: 'acme',
      plan: 'team',
    })
  })

  it('answers 401 for a customer it cannot use, and lets any other TypeError be the bug it is', async () => {
    const entitlements = client()
    // A client that fails for a reason of its own (a wrapper with a bug), with a perfectly good customer.
    const broken = {
      ...entitlements,
      check: async () => {
        throw new TypeError('cannot read properties of undefined')
      },
    }
    const made = express()
    made.get(
      '/numeric',
      requireEntitlement(entitlements, 'export', { context: () => ({ subject: 42 as unknown as string }) }),
      (_req, res) => res.json({ ok: true }),
    )
    made.get(
      '/broken',
      requireEntitlement(broken, 'export', { context: () => ({ subject: 'acme' }) }),
      (_req, res) => res.json({ ok: true }),
    )
    // Express's own error handler answers the bug: a 500, never a 401 that would send the user to log in again.
    made.use(
      (
        _error: unknown,
        _req: unknown,
        res: { status: (code: number) => { end: () => void } },
        _next: unknown,
      ) => res.status(500).end(),
    )
    const base = await listen(made)
    const numeric = await get(base, '/numeric')
    expect(numeric.status).toBe(401)
    expect(await numeric.json()).toMatchObject({ title: 'Customer unknown' })
    expect((await get(base, '/broken')).status).toBe(500)
  })

  it('refuses a customerHeader that is not a header name', () => {
    expect(() => requireEntitlement(client(), 'export', { customerHeader: '' })).toThrow(TypeError)
  })

  it('never answers 500 for a missing customer, an unknown one, or a bad token', async () => {
    const base = await listen(app(client()))
    const anonymous = await get(base, '/export')
    expect(anonymous.status).toBe(401)
    expect(anonymous.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    const unknown = await get(base, '/export', 'nobody')
    expect(unknown.status).toBe(403)
    expect((await unknown.json()).detail).toBe('not_in_plan')
    // The license server hands out garbage: a token proven bad is an answer (403 with the reason), not an outage.
    const forged = await get(base, '/export', 'forger')
    expect(forged.status).toBe(403)
    expect(await forged.json()).toMatchObject({ detail: 'token_invalid' })
  })
})
