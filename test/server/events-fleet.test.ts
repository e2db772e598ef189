import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createEntitlements, type EntitlementsClient, type ErrorEvent, metering } from '../../src/index.js'
import { LIVE_CLOCK, SERVICE, startTestServer, type TestServer } from './helpers.js'

// A fleet of instances on one service key against the reference server: every one of them hears an upgrade,
// whether it holds an event stream or the server refused it one.
let server: TestServer
let clients: EntitlementsClient[]
beforeEach(async () => {
  server = await startTestServer(LIVE_CLOCK, 3600, { maxStreamsPerService: 3 })
  clients = []
})
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close({ deadlineMs: 0 })))
  await server.close()
})

const until = async (condition: () => boolean, ms = 8000) => {
  const end = Date.now() + ms
  while (!condition()) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

describe('a fleet on one service key', () => {
  it('every instance hears an upgrade: those refused a stream (429) say so and poll v1/changes', async () => {
    await server.purchase('acme', 'team')
    const heard: string[][] = []
    const errors: ErrorEvent[][] = []
    for (let i = 0; i < 5; i++) {
      const client = createEntitlements({
        metering,
        server: {
          url: server.url,
          apiKey: SERVICE,
          events: true,
          revocationIntervalMs: 0,
          pollIntervalMs: 200,
        },
        keys: new URL('/.well-known/jwks.json', server.url),
        issuer: server.url,
        audience: 'acme-editor',
      })
      clients.push(client)
      heard.push([])
      errors.push([])
      client.on('change', (event) => heard[i]!.push(event.current.plan.id))
      client.on('error', (event) => errors[i]!.push(event))
      expect(await client.check('sso', { subject: 'acme' })).toMatchObject({ allowed: false })
    }
    // Three streams are held (the server's limit here); two instances were refused theirs and said why.
    await until(
      () => errors.filter((list) => list.some((e) => e.error.code === 'events_refused')).length === 2,
    )
    const refused = errors.flat().find((e) => e.error.code === 'events_refused')!
    expect(refused).toMatchObject({ during: 'events' })
    expect(refused.error.message).toMatch(/429/)
    // Let the refused ones take their cursor before the change happens.
    await new Promise((resolve) => setTimeout(resolve, 400))
    await server.order({
      orderId: 'acme-business',
      type: 'upgrade',
      customer: { id: 'acme' },
      sku: 'business',
    })
    await until(() => heard.every((plans) => plans.includes('business')))
    for (const client of clients)
      expect(await client.check('sso', { subject: 'acme' })).toMatchObject({
        allowed: true,
        plan: 'business',
      })
  })

  it('sizes its limits for a fleet: 256 streams on the service key, 16 on one customer’s credential', async () => {
    const sized = await startTestServer(LIVE_CLOCK)
    try {
      const customer = await sized.purchase('acme', 'team')
      const controllers: AbortController[] = []
      const open = (key: string) => {
        const controller = new AbortController()
        controllers.push(controller)
        return fetch(`${sized.url}/v1/events`, {
          headers: { authorization: `Bearer ${key}` },
          signal: controller.signal,
        })
      }
      const service = await Promise.all(Array.from({ length: 50 }, () => open(SERVICE)))
      expect(service.map((response) => response.status)).toEqual(Array(50).fill(200))
      // Held, not dropped: undici cancels the body of a response that is garbage-collected, freeing a slot.
      const held: Response[] = []
      for (let i = 0; i < 16; i++) held.push(await open(customer.apiKey))
      expect(held.map((response) => response.status)).toEqual(Array(16).fill(200))
      expect((await open(customer.apiKey)).status).toBe(429)
      expect([service.length, held.length]).toEqual([50, 16])
      for (const controller of controllers) controller.abort()
    } finally {
      await sized.close()
    }
  })
})
