import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createEntitlements,
  type EntitlementsClient,
  type EntitlementsClientOptions,
  metering,
  type ThresholdEvent,
} from '../../src/index.js'
import { createFileStorage } from '../../src/node/index.js'
import { SERVICE, startTestServer, type TestServer } from './helpers.js'

// The reference server sells a soft cap: its catalog prices it, its tokens carry it, and its usage report says what
// is included and what is overage per window, as a billing system would invoice it.

let server: TestServer | undefined
let client: EntitlementsClient | undefined
let instances: EntitlementsClient[] = []
afterEach(async () => {
  await client?.close({ deadlineMs: 1000 })
  await Promise.all(instances.map((instance) => instance.close({ deadlineMs: 500 })))
  instances = []
  client = undefined
  await server?.close()
  server = undefined
})

/** One app instance as the docs recommend it: the remote key set, file storage of its own, the test's clock. */
function instance(url: string, clock: { now: number }, overrides: Partial<EntitlementsClientOptions> = {}) {
  const started = createEntitlements({
    metering,
    server: { url, apiKey: SERVICE, timeoutMs: 1000 },
    keys: new URL('/.well-known/jwks.json', url),
    jwks: { timeoutMs: 1000 },
    issuer: url,
    audience: 'acme-editor',
    storage: createFileStorage(mkdtempSync(join(tmpdir(), 'entitle-soft-instance-'))),
    usage: { flushIntervalMs: 60_000 },
    platform: { now: () => clock.now },
    ...overrides,
  })
  instances.push(started)
  return started
}

interface Alert {
  metric: string
  windowEnd: string | null
  threshold: number
  limit: number
  total: number
}

async function alertsOf(customer: string): Promise<Alert[]> {
  const report = (await (await server!.admin('GET', `/customers/${customer}/usage`)).json()) as {
    alerts: Alert[]
  }
  return report.alerts
}

/** The `threshold` events the service key reads from the change feed, from the start. */
async function thresholdChanges(key = SERVICE): Promise<Array<Record<string, unknown>>> {
  const answer = (await (await server!.call('GET', '/v1/changes?after=0', key)).json()) as {
    events: Array<Record<string, unknown>>
  }
  return answer.events.filter((event) => event.event === 'threshold').map(({ id: _, ...rest }) => rest)
}

/** The example catalog with the Team plan's API calls made soft: 1 000 included, at most 1 500, alerts at 80 and 100%. */
function softCatalog(): string {
  const catalog = JSON.parse(readFileSync('examples/license-server/catalog.json', 'utf8'))
  catalog.plans.team.features['api-calls'].cap = {
    limit: 1000,
    period: 'month',
    soft: true,
    ceiling: 1500,
    thresholds: [80, 100],
  }
  const file = join(mkdtempSync(join(tmpdir(), 'entitle-soft-catalog-')), 'catalog.json')
  writeFileSync(file, JSON.stringify(catalog))
  return file
}

describe('soft limits on the reference server', () => {
  it('carries the soft cap in its tokens, and reports included and overage per window across a reset', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    server = await startTestServer(clock, 600, { catalog: softCatalog() })
    await server.purchase('acme', 'team')
    client = createEntitlements({
      metering,
      server: { url: server.url, apiKey: SERVICE },
      keys: new URL('/.well-known/jwks.json', server.url),
      issuer: server.url,
      audience: 'acme-editor',
      usage: { flushIntervalMs: 60_000 },
      platform: { now: () => clock.now },
    })
    await client.load('acme')
    expect(client.entitlements('acme')?.features.get('api-calls')?.cap).toMatchObject({
      limit: 1000,
      soft: true,
      ceiling: 1500,
      thresholds: [80, 100],
    })
    // 1 200 in the first window: 1 000 included, 200 overage; the decision says so.
    client.record('api-calls', 1200, { subject: 'acme' })
    expect(client.checkSync('api-calls', { subject: 'acme', amount: 1 })).toMatchObject({
      allowed: true,
      reason: 'overage',
      used: 1200,
      overage: 201,
    })
    await client.flush()
    // The window turns (the term started on the 20th: the next window starts on the 20th of next month).
    clock.now = Date.UTC(2026, 11, 21, 12)
    client.record('api-calls', 300, { subject: 'acme' })
    await client.flush()
    const report = (await (await server.admin('GET', '/customers/acme/usage')).json()) as {
      usage: Array<{ metric: string; windowEnd: string; total: number; included?: number; overage?: number }>
    }
    const calls = report.usage
      .filter((row) => row.metric === 'api-calls')
      .sort((a, b) => a.windowEnd.localeCompare(b.windowEnd))
    expect(calls).toEqual([
      {
        metric: 'api-calls',
        windowEnd: '2026-12-20T12:00:00.000Z',
        total: 1200,
        included: 1000,
        overage: 200,
      },
      { metric: 'api-calls', windowEnd: '2027-01-20T12:00:00.000Z', total: 300, included: 300, overage: 0 },
    ])
  })
})

describe('usage alerts on the reference server', () => {
  it('records each threshold once whatever number of instances crossed it, and publishes it on the stream', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    server = await startTestServer(clock, 600, { catalog: softCatalog() })
    const acme = await server.purchase('acme', 'team')
    const globex = await server.purchase('globex', 'team')
    const controller = new AbortController()
    const stream = await fetch(`${server.url}/v1/events`, {
      headers: { authorization: `Bearer ${SERVICE}` },
      signal: controller.signal,
    })
    const reader = stream.body!.getReader()
    let text = ''
    const until = async (pattern: RegExp) => {
      while (!pattern.test(text)) text += new TextDecoder().decode((await reader.read()).value)
    }
    await until(/: connected/)
    const [a, b] = [instance(server.url, clock), instance(server.url, clock)]
    await Promise.all([a.load('acme'), b.load('acme')])
    // Each instance counts 500 and reports in two batches; together they cross 80% (800) and 100% (1 000).
    for (const [who, amount] of [
      [a, 300],
      [b, 300],
      [a, 200],
      [b, 200],
    ] as const) {
      who.record('api-calls', amount, { subject: 'acme' })
      await who.flush()
    }
    await until(/event: threshold\ndata: .*"threshold":100/)
    controller.abort()
    const window = '2026-12-20T12:00:00.000Z'
    expect(await alertsOf('acme')).toEqual([
      {
        metric: 'api-calls',
        windowEnd: window,
        threshold: 80,
        limit: 1000,
        total: 800,
        crossedAt: expect.any(String),
      },
      {
        metric: 'api-calls',
        windowEnd: window,
        threshold: 100,
        limit: 1000,
        total: 1000,
        crossedAt: expect.any(String),
      },
    ])
    const streamed = [...text.matchAll(/event: threshold\ndata: (.*)\n/g)].map((match) =>
      JSON.parse(match[1]!),
    )
    expect(streamed).toEqual([
      { subject: 'acme', metric: 'api-calls', threshold: 80, limit: 1000, total: 800, windowEnd: window },
      { subject: 'acme', metric: 'api-calls', threshold: 100, limit: 1000, total: 1000, windowEnd: window },
    ])
    // More usage in the window crosses nothing new; the next window crosses them again.
    a.record('api-calls', 100, { subject: 'acme' })
    await a.flush()
    expect(await alertsOf('acme')).toHaveLength(2)
    clock.now = Date.UTC(2026, 11, 21, 12)
    b.record('api-calls', 900, { subject: 'acme' })
    await b.flush()
    expect((await alertsOf('acme')).map((alert) => [alert.windowEnd, alert.threshold, alert.total])).toEqual([
      ['2027-01-20T12:00:00.000Z', 80, 900],
      [window, 80, 800],
      [window, 100, 1000],
    ])
    // The change feed a polling client reads carries them too: the service sees them, and the customer's own
    // credential; another customer's does not.
    expect(await thresholdChanges()).toHaveLength(3)
    expect(await thresholdChanges(acme.apiKey)).toHaveLength(3)
    expect(await thresholdChanges(globex.apiKey)).toEqual([])
  })

  it('offline: keeps allowing past the soft limit, alerts locally, and the server agrees once it is back', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    const dir = mkdtempSync(join(tmpdir(), 'entitle-soft-server-'))
    const catalog = softCatalog()
    server = await startTestServer(clock, 600, { catalog, db: join(dir, 'license.db') })
    await server.purchase('acme', 'team')
    const url = server.url
    const port = Number(new URL(url).port)
    const [a, b] = [instance(url, clock), instance(url, clock)]
    await Promise.all([a.load('acme'), b.load('acme')])
    const heard: Array<[string, number]> = []
    a.on('threshold', (event: ThresholdEvent) => heard.push(['a', event.threshold]))
    b.on('threshold', (event: ThresholdEvent) => heard.push(['b', event.threshold]))
    await server.close()
    server = undefined
    // The server is gone: each instance allows what its soft cap allows, from its own count (no fleet store),
    // and fires its own alerts: a passes the limit, b stays under 80%.
    let granted = 0
    for (let i = 0; i < 110; i++)
      if ((await a.consume('api-calls', { subject: 'acme', amount: 10 })).allowed) granted += 10
    for (let i = 0; i < 30; i++)
      if ((await b.consume('api-calls', { subject: 'acme', amount: 10 })).allowed) granted += 10
    expect(granted).toBe(1400)
    expect(a.checkSync('api-calls', { subject: 'acme' })).toMatchObject({
      allowed: true,
      reason: 'overage',
      used: 1100,
      overage: 101,
    })
    await new Promise((resolve) => setTimeout(resolve, 0))
    expect(heard).toEqual([
      ['a', 80],
      ['a', 100],
    ])
    await Promise.all([a.flush(), b.flush()])
    // Back on the same port, on the same database: what was held is sent, each line once.
    server = await startTestServer(clock, 600, { catalog, db: join(dir, 'license.db'), port })
    await Promise.all([a.flush(), b.flush()])
    const report = (await (await server.admin('GET', '/customers/acme/usage')).json()) as {
      usage: Array<{ metric: string; total: number; included?: number; overage?: number }>
    }
    expect(report.usage.filter((row) => row.metric === 'api-calls')).toEqual([
      {
        metric: 'api-calls',
        windowEnd: '2026-12-20T12:00:00.000Z',
        total: 1400,
        included: 1000,
        overage: 400,
      },
    ])
    expect((await alertsOf('acme')).map((alert) => alert.threshold)).toEqual([80, 100])
    expect((await thresholdChanges()).map((event) => event.threshold)).toEqual([80, 100])
    // A token issued now carries what the server counted: a fresh instance starts from 1 400, not from 0.
    const fresh = instance(server.url, clock)
    await fresh.load('acme')
    expect(fresh.checkSync('api-calls', { subject: 'acme' })).toMatchObject({
      allowed: true,
      reason: 'overage',
      used: 1400,
    })
  })
})
