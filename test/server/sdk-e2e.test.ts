import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { type ChangeEvent, createEntitlements, type EntitlementsClient, metering } from '../../src/index.js'
import { importBrowserBuild } from './browser-build.js'
import { SERVICE, startTestServer, type TestServer } from './helpers.js'

// The SDK against the real reference server on loopback, with real timers: the protocol both sides implement.
let clock: { now: number }
let server: TestServer
let clients: EntitlementsClient[]
beforeEach(async () => {
  // A live clock: with a frozen one, a usage confirmation and a token's snapshot share a millisecond and the
  // client (rightly, when it cannot tell their order) counts the units on both sides.
  clock = {
    get now() {
      return Date.now()
    },
  }
  server = await startTestServer(clock)
  clients = []
})
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close({ deadlineMs: 1000 })))
  await server.close()
})

const until = async (condition: () => boolean | Promise<boolean>, ms = 5000) => {
  const end = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A user of `subject` asks for SSO, and an admin approves: the server's token for it changes. */
async function approveSso(subject: string): Promise<void> {
  const ask = await server.call('POST', '/v1/access-requests', SERVICE, {
    subject,
    feature: 'sso',
    requestedBy: 'ana',
  })
  const { id } = await ask.json()
  await server.admin('POST', `/access-requests/${id}/decision`, { approve: true, by: 'admin' })
}

describe('SDK ↔ reference server', () => {
  it('multi-tenant: checks, meters, hears an approved access request at once, and a revocation', async () => {
    await server.purchase('acme', 'team')
    const client = createEntitlements({
      metering,
      server: { url: server.url, apiKey: SERVICE, events: true, revocationIntervalMs: 60_000 },
      keys: new URL('/.well-known/jwks.json', server.url),
      issuer: server.url,
      audience: 'acme-editor',
      usage: { flushIntervalMs: 100 },
    })
    clients.push(client)
    const changes: ChangeEvent[] = []
    client.on('change', (event) => changes.push(event))
    expect(await client.check('export', { subject: 'acme' })).toMatchObject({ allowed: true, plan: 'team' })
    expect(await client.check('sso', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'not_in_plan',
    })
    for (let i = 0; i < 40; i++) client.record('api-calls', 1, { subject: 'acme' })
    expect(client.checkSync('api-calls', { subject: 'acme' }).used).toBe(40)
    await until(
      async () => (await (await server.admin('GET', '/customers/acme/usage')).json()).usage[0]?.total === 40,
    )
    // A user asks for SSO; an admin approves; the running client hears it over the event stream.
    await approveSso('acme')
    await until(() =>
      changes.some(
        (event) =>
          event.previous !== undefined &&
          event.changes.some((c) => c.type === 'feature_added' && c.feature === 'sso'),
      ),
    )
    expect(client.checkSync('sso', { subject: 'acme' }).allowed).toBe(true)
    // The new token's snapshot counts the 40 units the server has: the client counts them once.
    expect(client.checkSync('api-calls', { subject: 'acme' }).used).toBe(40)
    await server.admin('POST', '/customers/acme/revoke')
    await until(() => client.checkSync('export', { subject: 'acme' }).reason === 'revoked')
  })

  it('the browser build, chunk and all: loads the event stream when it starts and hears an approved request', async () => {
    await server.purchase('acme', 'team')
    // The stream and its parser are in their chunk only: a page whose client hears no changes never fetches them.
    const browser = await importBrowserBuild('event-stream', 'the event stream was cut off')
    // Streams the server answered: a change made before the stream is held would be heard by polling, 30 s on.
    let streams = 0
    const client = browser.createEntitlements({
      server: { url: server.url, apiKey: SERVICE, events: true, revocationIntervalMs: 0 },
      keys: new URL('/.well-known/jwks.json', server.url),
      issuer: server.url,
      audience: 'acme-editor',
      platform: {
        fetch: async (input: RequestInfo | URL, init?: RequestInit) => {
          const response = await fetch(input, init)
          if (String(input instanceof Request ? input.url : input).endsWith('/v1/events') && response.ok)
            streams++
          return response
        },
      },
    })
    clients.push(client)
    const errors: unknown[] = []
    client.on('error', (event) => errors.push(event))
    expect(streams).toBe(0)
    expect(await client.check('sso', { subject: 'acme' })).toMatchObject({ reason: 'not_in_plan' })
    await until(() => streams === 1)
    await approveSso('acme')
    await until(() => client.checkSync('sso', { subject: 'acme' }).allowed)
    expect(errors).toEqual([])
  })

  it('single-tenant embedded app: a device token from its license key, usage under the same key', async () => {
    const { licenseKey } = await server.purchase('globex', 'starter', { seats: 1 })
    const activate = async () => {
      const response = await server.call('POST', '/v1/activations', undefined, {
        licenseKey,
        fingerprint: 'kiosk-000001',
      })
      return ((await response.json()) as { token: string }).token
    }
    const app = createEntitlements({
      metering,
      token: activate,
      keys: new URL('/.well-known/jwks.json', server.url),
      issuer: server.url,
      audience: 'acme-editor',
      usage: { url: server.url, apiKey: licenseKey },
    })
    clients.push(app)
    expect(await app.check('export', { device: 'kiosk-000001' })).toMatchObject({
      allowed: true,
      plan: 'starter',
    })
    expect(await app.check('export', { device: 'someone-else' })).toMatchObject({
      reason: 'device_not_allowed',
    })
    app.record('api-calls', 5)
    expect(app.checkSync('api-calls', { device: 'kiosk-000001', amount: 1 })).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      used: 5,
    })
    expect(await app.flush()).toEqual({ sent: 1, pending: 0 })
    const usage = await (await server.admin('GET', '/customers/globex/usage')).json()
    expect(usage.usage[0]).toMatchObject({ metric: 'api-calls', total: 5 })
  })
})
