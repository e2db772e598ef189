import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createEntitlements,
  type DecisionSummaryEvent,
  type EntitlementsClient,
  metering,
} from '../../src/index.js'
import { SERVICE, startTestServer, type TestServer } from './helpers.js'

// A client kept at a Worker's module scope, against the reference server, with the manual clock. As workerd does:
// no timer ever fires (a Worker's timers end with the request that set them), and an event stream opened in a
// request goes silent when that request ends: its reads never settle, no error, no end. `background: 'requests'`
// must keep the client current through the requests alone.

const clock = { now: Date.UTC(2026, 11, 4, 12) }
let server: TestServer
let clients: EntitlementsClient[] = []

beforeEach(async () => {
  clock.now = Date.UTC(2026, 11, 4, 12)
  server = await startTestServer(clock, 3600)
})
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close({ deadlineMs: 0 })))
  clients = []
  await server.close()
})

const until = async (condition: () => boolean | Promise<boolean>, ms = 5000) => {
  const end = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('timed out')
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** A Worker isolate: requests one after another; streams opened in one go silent when it ends. */
function workerIsolate() {
  const cuts: Array<() => void> = []
  const streams: Array<{ lastEventId: string | null }> = []
  const requests: string[] = []
  const handedOver: Promise<unknown>[] = []
  const never = () => new Promise<never>(() => {})
  const fetchInRequest: typeof fetch = async (input, init) => {
    const url = new URL(String(input instanceof Request ? input.url : input))
    requests.push(url.pathname)
    const response = await fetch(input, init)
    if (!(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) return response
    streams.push({ lastEventId: new Headers(init?.headers).get('last-event-id') })
    const reader = response.body!.getReader()
    let dead = false
    cuts.push(() => {
      dead = true
      void reader.cancel().catch(() => {})
    })
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (dead) return never()
        const read = await reader.read()
        if (dead) return never()
        if (read.done) controller.close()
        else controller.enqueue(read.value)
      },
    })
    return new Response(body, { status: response.status, headers: response.headers })
  }
  return {
    platform: {
      now: () => clock.now,
      setTimeout: () => 0,
      clearTimeout: () => {},
      fetch: fetchInRequest,
      waitUntil: (work: Promise<unknown>) => void handedOver.push(work),
    },
    streams,
    count: (path: string) => requests.filter((found) => found.endsWith(path)).length,
    /** The request ends: what it opened goes silent, as workerd cuts it. */
    endRequest() {
      for (const cut of cuts.splice(0)) cut()
    },
  }
}

function workerClient(isolate: ReturnType<typeof workerIsolate>, events: boolean) {
  const client = createEntitlements({
    metering,
    server: { url: server.url, apiKey: SERVICE, events, revocationIntervalMs: 60_000 },
    keys: new URL('/.well-known/jwks.json', server.url),
    issuer: server.url,
    audience: 'acme-editor',
    background: 'requests',
    usage: { flushIntervalMs: 5_000 },
    platform: isolate.platform,
  })
  clients.push(client)
  return client
}

describe("background: 'requests' (a Worker's client, kept across requests)", () => {
  it('hears an upgrade pushed while no request held its stream, at the first request after the stream’s life', async () => {
    await server.purchase('acme', 'starter')
    const isolate = workerIsolate()
    const client = workerClient(isolate, true)
    // Request 1: the client starts, loads acme and opens the stream, which the runtime cuts when it ends.
    expect(await client.check('sso', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'not_in_plan',
    })
    await until(() => isolate.streams.length === 1)
    await new Promise((resolve) => setTimeout(resolve, 50))
    isolate.endRequest()
    // Between requests: acme upgrades. Nobody hears it.
    const upgrade = { orderId: 'acme-up', type: 'upgrade', customer: { id: 'acme' }, sku: 'business' }
    expect((await server.order(upgrade)).status).toBe(200)
    // Request 2, 10 s on: the stream may still be held as far as the client can tell (25 s life): no new one.
    clock.now += 10_000
    expect(client.checkSync('sso', { subject: 'acme' }).allowed).toBe(false)
    expect(isolate.streams).toHaveLength(1)
    isolate.endRequest()
    // Request 3, past the stream's life: the check opens the next one from the cursor the first was given at
    // connect, the server replays the upgrade, and the client fetches acme's new token within this request.
    clock.now += 20_000
    client.checkSync('export', { subject: 'acme' })
    await until(() => isolate.streams.length === 2)
    expect(isolate.streams[1]!.lastEventId).toMatch(/^\d+$/)
    await until(() => client.checkSync('sso', { subject: 'acme' }).allowed)
    expect(client.checkSync('sso', { subject: 'acme' })).toMatchObject({ allowed: true, plan: 'business' })
  })

  it('polls revocations, sends usage and its decision summary at the requests that find them due, with no timer', async () => {
    await server.purchase('acme', 'starter')
    await server.purchase('globex', 'team')
    const isolate = workerIsolate()
    const client = workerClient(isolate, false)
    const summaries: DecisionSummaryEvent[] = []
    client.on('decision', (event) => summaries.push(event))
    expect(await client.check('export', { subject: 'globex' })).toMatchObject({ allowed: true })
    expect(await client.check('export', { subject: 'acme' })).toMatchObject({ allowed: true })
    client.record('api-calls', 3, { subject: 'acme' })
    await until(() => isolate.count('/v1/revocations') === 1)
    isolate.endRequest()
    expect((await server.admin('POST', '/customers/globex/revoke')).status).toBe(200)
    // 6 s on: the usage send (every 5 s) is due; the revocation poll (every 60 s) is not.
    clock.now += 6_000
    client.checkSync('export', { subject: 'acme' })
    await until(
      async () => (await (await server.admin('GET', '/customers/acme/usage')).json()).usage[0]?.total === 3,
    )
    expect(isolate.count('/v1/revocations')).toBe(1)
    expect(client.checkSync('export', { subject: 'globex' }).allowed).toBe(true)
    isolate.endRequest()
    // 61 s on: the revocation poll and the decision summary (every 60 s) run at this request.
    clock.now += 55_000
    client.checkSync('export', { subject: 'acme' })
    await until(() => isolate.count('/v1/revocations') === 2)
    await until(() => client.checkSync('export', { subject: 'globex' }).allowed === false)
    expect(client.checkSync('export', { subject: 'globex' })).toMatchObject({ allowed: false })
    expect(summaries.length).toBeGreaterThanOrEqual(1)
    expect(summaries[0]!.features.export!.allowed).toBeGreaterThanOrEqual(4)
  })

  it("without it, the same isolate's client never hears the upgrade and never polls again (why the mode exists)", async () => {
    await server.purchase('acme', 'starter')
    const isolate = workerIsolate()
    const client = createEntitlements({
      metering,
      server: { url: server.url, apiKey: SERVICE, events: true, revocationIntervalMs: 60_000 },
      keys: new URL('/.well-known/jwks.json', server.url),
      issuer: server.url,
      audience: 'acme-editor',
      platform: isolate.platform,
    })
    clients.push(client)
    await client.check('sso', { subject: 'acme' })
    await until(() => isolate.streams.length === 1)
    isolate.endRequest()
    await server.order({ orderId: 'acme-up', type: 'upgrade', customer: { id: 'acme' }, sku: 'business' })
    clock.now += 120_000
    client.checkSync('sso', { subject: 'acme' })
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(isolate.streams).toHaveLength(1)
    expect(isolate.count('/v1/revocations')).toBe(1)
    expect(client.checkSync('sso', { subject: 'acme' }).allowed).toBe(false)
  })
})
