import { createHmac } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN, SECRET, SERVICE, startTestServer, type TestServer } from './helpers.js'

// Every route of the reference server against hostile input, through `app.request()` (no socket needed): each
// answer is either a success or an RFC 9457 problem+json whose status is the response's, and never a 500.
const clock = { now: Date.UTC(2026, 10, 25, 12, 0, 0) }
let server: TestServer
let acme: { apiKey: string; licenseKey: string }
/** A third tenant, never the target of a request: its keys are "another tenant's". */
let initech: { apiKey: string; licenseKey: string }

beforeAll(async () => {
  server = await startTestServer(clock)
  acme = await server.purchase('acme', 'team', { seats: 2 })
  await server.purchase('globex', 'team')
  initech = await server.purchase('initech', 'team')
})
afterAll(async () => {
  await server.close()
})

const deep = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`
const NUMBERS = [1e308, -1, 0.5, Number.MAX_SAFE_INTEGER + 2, -0]
const STRINGS = [
  'a\u0000b',
  'ünïcødé-🙂',
  "'; DROP TABLE customers; --",
  '../../etc/passwd',
  '<script>alert(1)</script>',
  'x'.repeat(10_000),
  '__proto__',
  'constructor',
]

/** Valid bodies per route, so each hostile variant changes one thing. */
const VALID: Record<string, () => Record<string, unknown>> = {
  order: () => ({
    orderId: `o-${Math.random()}`.replace('.', ''),
    type: 'upgrade',
    customer: { id: 'acme' },
  }),
  usage: () => ({ lines: [{ id: 'l1', metric: 'api-calls', amount: 1, start: clock.now, end: clock.now }] }),
  activation: () => ({ licenseKey: acme.licenseKey, fingerprint: 'device-0001' }),
  access: () => ({ feature: 'sso', requestedBy: 'ana' }),
  decision: () => ({ approve: false, by: 'admin' }),
  rotation: () => ({ immediate: false }),
}

/** Every field of a body replaced by each hostile number and string, one at a time, nested fields included. */
function mutations(body: Record<string, unknown>): unknown[] {
  const out: unknown[] = []
  const visit = (value: unknown, replace: (next: unknown) => unknown) => {
    for (const bad of [...NUMBERS, ...STRINGS, null, [], {}]) out.push(replace(bad))
    if (typeof value === 'object' && value !== null)
      for (const [key, inner] of Object.entries(value))
        visit(inner, (next) =>
          replace(
            Array.isArray(value)
              ? value.map((v, i) => (String(i) === key ? next : v))
              : { ...value, [key]: next },
          ),
        )
  }
  for (const [key, value] of Object.entries(body)) visit(value, (next) => ({ ...body, [key]: next }))
  return out
}

interface Route {
  method: string
  path: string
  auth: 'customer' | 'admin' | 'signed' | 'none'
  body?: keyof typeof VALID
}

const ROUTES: Route[] = [
  { method: 'POST', path: '/v1/orders', auth: 'signed', body: 'order' },
  { method: 'GET', path: '/v1/entitlements/{id}', auth: 'customer' },
  { method: 'GET', path: '/v1/revocations', auth: 'customer' },
  { method: 'POST', path: '/v1/usage', auth: 'customer', body: 'usage' },
  { method: 'POST', path: '/v1/activations', auth: 'none', body: 'activation' },
  { method: 'DELETE', path: '/v1/activations', auth: 'none', body: 'activation' },
  { method: 'POST', path: '/v1/offline-licenses', auth: 'none', body: 'activation' },
  { method: 'POST', path: '/v1/access-requests', auth: 'customer', body: 'access' },
  { method: 'GET', path: '/admin/customers', auth: 'admin' },
  { method: 'GET', path: '/admin/customers/{id}', auth: 'admin' },
  { method: 'GET', path: '/admin/customers/{id}/usage', auth: 'admin' },
  { method: 'POST', path: '/admin/customers/{id}/credentials', auth: 'admin' },
  { method: 'POST', path: '/admin/customers/{id}/devices/{id}/release', auth: 'admin' },
  { method: 'GET', path: '/admin/access-requests', auth: 'admin' },
  { method: 'POST', path: '/admin/access-requests/{id}/decision', auth: 'admin', body: 'decision' },
  { method: 'POST', path: '/admin/keys/rotate', auth: 'admin', body: 'rotation' },
]

const PATH_IDS = [
  'globex',
  'nobody',
  '..%2F..%2Fetc%2Fpasswd',
  '%00',
  '%C3%BC',
  "'%3B%20DROP%20TABLE%20x%3B--",
  'x'.repeat(5000),
]

function headersFor(route: Route, raw: string | undefined, credential?: string): Record<string, string> {
  const headers: Record<string, string> = {}
  if (route.auth === 'customer') headers.authorization = `Bearer ${credential ?? acme.apiKey}`
  if (route.auth === 'admin') headers.authorization = `Bearer ${credential ?? ADMIN}`
  if (route.auth === 'signed') {
    const t = Math.floor(clock.now / 1000)
    const v1 = createHmac('sha256', SECRET)
      .update(`${t}.${raw ?? ''}`)
      .digest('hex')
    headers['entitle-signature'] = `t=${t},v1=${v1}`
  }
  return headers
}

let sequence = 0
/** Sends one request; a signed route gets a fresh timestamp each time, so no two are replays of each other. */
async function send(route: Route, init: { path?: string; raw?: string; type?: string; credential?: string }) {
  clock.now += 1000
  sequence++
  const headers = headersFor(route, init.raw, init.credential)
  if (init.raw !== undefined) headers['content-type'] = init.type ?? 'application/json'
  const path = init.path ?? route.path.replaceAll('{id}', 'acme')
  return server.server.app.request(path, {
    method: route.method,
    headers,
    ...(init.raw === undefined ? {} : { body: init.raw }),
  })
}

async function expectProblemOrSuccess(response: Response, label: string): Promise<number> {
  expect({ label, status: response.status }).not.toEqual({ label, status: 500 })
  if (response.status >= 400) {
    expect({ label, type: response.headers.get('content-type') }).toEqual({
      label,
      type: 'application/problem+json',
    })
    const problem = (await response.json()) as { status: number; title: string; type: string }
    expect({ label, status: problem.status }).toEqual({ label, status: response.status })
    expect(problem.type).toMatch(/^urn:entitle:problem:[a-z0-9-]+$/)
  } else await response.body?.cancel()
  return response.status
}

describe('hostile input, every route', () => {
  it.each(ROUTES.filter((route) => route.body !== undefined))(
    '$method $path: malformed, mistyped, empty, huge, deep and mutated bodies are problems, never a 500',
    async (route) => {
      const valid = JSON.stringify(VALID[route.body!]!())
      const cases: Array<[string, { raw: string; type?: string }, number[]]> = [
        ['malformed JSON', { raw: '{"a": ' }, [400]],
        ['wrong content type', { raw: valid, type: 'text/plain' }, [415]],
        ['form content type', { raw: 'a=1', type: 'application/x-www-form-urlencoded' }, [415]],
        ['empty', { raw: '' }, [400]],
        ['10 MB', { raw: `{"pad":"${'x'.repeat(10 * 1024 * 1024)}"}` }, [413]],
        ['10 000 deep', { raw: deep(10_000) }, [400, 413, 422]],
        ['a JSON string', { raw: '"hello"' }, [422]],
        ['a JSON array', { raw: '[]' }, [422]],
        ['null', { raw: 'null' }, [422]],
      ]
      for (const [label, init, statuses] of cases) {
        const status = await expectProblemOrSuccess(await send(route, init), `${route.path} ${label}`)
        expect({ label, status, allowed: statuses.includes(status) }).toEqual({
          label,
          status,
          allowed: true,
        })
      }
      for (const [i, body] of mutations(VALID[route.body!]!()).entries())
        await expectProblemOrSuccess(
          await send(route, { raw: JSON.stringify(body) }),
          `${route.path} mutation ${i}`,
        )
    },
  )

  it.each(ROUTES.filter((route) => route.path.includes('{id}')))(
    '$method $path: ids with NUL, unicode, SQL, traversal and 5 000 characters',
    async (route) => {
      for (const id of PATH_IDS) {
        const path = route.path.replaceAll('{id}', id)
        const raw = route.body === undefined ? undefined : JSON.stringify(VALID[route.body]!())
        const status = await expectProblemOrSuccess(
          await send(route, { path, ...(raw ? { raw } : {}) }),
          path,
        )
        if (id !== 'globex' && id !== 'nobody') expect({ path, status }).toEqual({ path, status: 404 })
      }
    },
  )

  it.each(ROUTES.filter((route) => route.auth === 'customer' || route.auth === 'admin'))(
    '$method $path: no credentials, unknown ones, another tenant’s, a Bearer with spaces',
    async (route) => {
      const raw = route.body === undefined ? undefined : JSON.stringify(VALID[route.body]!())
      for (const credential of ['', 'ck_unknown', 'Bearer', "' OR 1=1 --", 'x'.repeat(10_000)]) {
        const status = await expectProblemOrSuccess(
          await send(route, { credential, ...(raw ? { raw } : {}) }),
          `${route.path} ${credential.slice(0, 10)}`,
        )
        expect(status).toBe(401)
      }
      // Another tenant's key reads and changes nothing of acme's, and no customer key opens an admin route.
      const other = route.auth === 'admin' ? initech.apiKey : initech.licenseKey
      const path = route.path.replaceAll('{id}', 'acme')
      const status = await expectProblemOrSuccess(
        await send(route, { path, credential: other, ...(raw ? { raw } : {}) }),
        path,
      )
      if (route.auth === 'admin') expect(status).toBe(401)
      if (route.path === '/v1/entitlements/{id}') expect(status).toBe(403)
    },
  )

  it('GET /admin/access-requests: an unknown status is a 422 problem', async () => {
    for (const status of ['nope', "'; DROP", '\u0000'])
      expect(
        await expectProblemOrSuccess(
          await server.server.app.request(`/admin/access-requests?status=${encodeURIComponent(status)}`, {
            headers: { authorization: `Bearer ${ADMIN}` },
          }),
          status,
        ),
      ).toBe(422)
  })

  it('GET /v1/events: a Last-Event-ID that is not a number replays nothing and answers the stream', async () => {
    const controller = new AbortController()
    const response = await server.server.app.request('/v1/events', {
      headers: { authorization: `Bearer ${SERVICE}`, 'last-event-id': '1; DROP TABLE events' },
      signal: controller.signal,
    })
    expect(response.status).toBe(200)
    controller.abort()
    await response.body?.cancel()
  })

  it('left the data alone: hostile bodies on every route change no customer of the three bought', async () => {
    // Its own hostile requests, so it holds alone and in any order; the other tests of this file add more.
    const before = sequence
    for (const route of ROUTES.filter((candidate) => candidate.body !== undefined))
      for (const body of mutations(VALID[route.body!]!()).slice(0, 40))
        await expectProblemOrSuccess(await send(route, { raw: JSON.stringify(body) }), route.path)
    expect(sequence - before).toBeGreaterThan(100)
    const { customers } = (await (await server.admin('GET', '/customers')).json()) as {
      customers: Array<{ id: string; license: { sku: string; status: string } }>
    }
    expect(customers.map((c) => c.id).sort()).toEqual(['acme', 'globex', 'initech'])
  })
})
