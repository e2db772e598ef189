import { createHmac } from 'node:crypto'
import { type StartOptions, startLicenseServer } from '../../examples/license-server/src/start.js'

export const ADMIN = 'adm_test_0123456789abcdef0123456789abcdef'
export const SECRET = 'whs_test_0123456789abcdef0123456789abcdef'
export const SERVICE = 'svc_test_0123456789abcdef0123456789abcdef'

/** The machine's own clock, for tests that run the server in real time. */
export const LIVE_CLOCK = {
  get now() {
    return Date.now()
  },
}

/** The reference server on loopback, SQLite in memory (unless `overrides.db`), with a clock the test moves. */
export async function startTestServer(
  clock: { now: number },
  tokenTtlSec = 600,
  overrides: Partial<StartOptions> = {},
) {
  const running = await startLicenseServer({
    db: ':memory:',
    port: 0,
    adminKey: ADMIN,
    orderSecret: SECRET,
    serviceKey: SERVICE,
    tokenTtlSec,
    now: () => clock.now,
    heartbeatMs: 60_000,
    ...overrides,
  })
  const url = running.url

  /** A request with a bearer key; JSON bodies are serialized. */
  async function call(
    method: string,
    path: string,
    key?: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ) {
    return fetch(`${url}${path}`, {
      method,
      headers: {
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    })
  }

  /** Places an order the way a CRM does: the raw body signed with the shared secret and a timestamp. */
  async function order(body: unknown, options: { secret?: string; at?: number; raw?: string } = {}) {
    const raw = options.raw ?? JSON.stringify(body)
    const t = Math.floor((options.at ?? clock.now) / 1000)
    const v1 = createHmac('sha256', options.secret ?? SECRET)
      .update(`${t}.${raw}`)
      .digest('hex')
    return fetch(`${url}/v1/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'entitle-signature': `t=${t},v1=${v1}` },
      body: raw,
    })
  }

  /** Buys a plan for a customer and returns its one-time credentials. */
  async function purchase(customer: string, sku = 'starter', extra: Record<string, unknown> = {}) {
    const response = await order({
      orderId: `o-${customer}-${sku}`,
      type: 'purchase',
      customer: { id: customer },
      sku,
      ...extra,
    })
    if (response.status !== 201)
      throw new Error(`purchase failed: ${response.status} ${await response.text()}`)
    const answer = (await response.json()) as { credentials: { apiKey: string; licenseKey: string } }
    return answer.credentials
  }

  const admin = (method: string, path: string, body?: unknown) => call(method, `/admin${path}`, ADMIN, body)

  /** The customer's current entitlement token, as a service (or the given key) fetches it. */
  async function tokenOf(customer: string, key = SERVICE): Promise<string> {
    const response = await call('GET', `/v1/entitlements/${customer}`, key)
    if (response.status !== 200) throw new Error(`no token for ${customer}: ${response.status}`)
    return response.text()
  }

  return { ...running, url, call, order, purchase, admin, tokenOf }
}

export type TestServer = Awaited<ReturnType<typeof startTestServer>>

/** Asserts the RFC 9457 shape and returns the problem. */
export async function problemOf(
  response: Response,
): Promise<{ status: number; title: string; type: string; detail?: string }> {
  if (!(response.headers.get('content-type') ?? '').startsWith('application/problem+json'))
    throw new Error(`not a problem+json response: ${response.status} ${response.headers.get('content-type')}`)
  return (await response.json()) as { status: number; title: string; type: string }
}
