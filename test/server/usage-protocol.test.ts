import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createEntitlements,
  type EntitlementsClient,
  type EntitlementsClientOptions,
  isEntitlementError,
  metering,
  type UsageLine,
} from '../../src/index.js'
import { createFileStorage } from '../../src/node/index.js'
import { seeded } from '../helpers.js'
import { problemOf, SERVICE, startTestServer, type TestServer } from './helpers.js'

// The usage protocol end to end: the SDK against the reference server on loopback, real timers, the
// configuration the docs recommend (remote key set, file storage), and real restarts of both sides.
const clock = {
  get now() {
    return Date.now()
  },
}
let dir: string
let server: TestServer
let clients: EntitlementsClient[]

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'entitle-usage-'))
  server = await startTestServer(clock)
  clients = []
})
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close({ deadlineMs: 500 })))
  await server.close()
  await rm(dir, { recursive: true, force: true })
})

function start(overrides: Partial<EntitlementsClientOptions> = {}): EntitlementsClient {
  const url = server.url
  const client = createEntitlements({
    metering,
    server: { url, apiKey: SERVICE, timeoutMs: 2000 },
    keys: new URL('/.well-known/jwks.json', url),
    issuer: url,
    audience: 'acme-editor',
    storage: createFileStorage(join(dir, 'app')),
    usage: { flushIntervalMs: 60_000, persistIntervalMs: 50 },
    ...overrides,
  })
  clients.push(client)
  return client
}

async function totals(customer: string): Promise<Record<string, number>> {
  const response = await server.admin('GET', `/customers/${customer}/usage`)
  const { usage } = (await response.json()) as { usage: Array<{ metric: string; total: number }> }
  const sums: Record<string, number> = {}
  for (const row of usage) sums[row.metric] = (sums[row.metric] ?? 0) + row.total
  return sums
}

/**
 * A worker process of an app, on the built package: records `units` for acme while the license server is out of
 * reach, waits for the journal to be written, then ends as `how` says (killed, or a graceful close).
 */
function worker(folder: string, units: number, how: 'kill' | 'close'): Promise<number | null> {
  const script = `
import { createEntitlements, metering } from 'entitle'
import { createFileStorage } from 'entitle/node'
const down = 'http://127.0.0.1:1'
const client = createEntitlements({
  metering,
  server: { url: down, timeoutMs: 200 },
  keys: new URL('/.well-known/jwks.json', down),
  issuer: down,
  audience: 'acme-editor',
  storage: createFileStorage(${JSON.stringify(folder)}),
  usage: { flushIntervalMs: 60_000, persistIntervalMs: 20 },
})
for (let i = 0; i < ${units}; i++) {
  client.record('api-calls', 1, { subject: 'acme' })
  await new Promise((resolve) => setTimeout(resolve, 2))
}
await new Promise((resolve) => setTimeout(resolve, 200))
if (${JSON.stringify(how)} === 'kill') process.kill(process.pid, 'SIGKILL')
await client.close({ deadlineMs: 0 })
`
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: 'ignore' })
  return new Promise((resolve) => child.on('exit', (code) => resolve(code)))
}

// docs/metering.md: one storage belongs to one process. Two workers of an app, each on a folder of its own (as a
// cluster gives each worker a stable index), record through an outage and end; started again on the same folders,
// the app sends every unit, once.
describe('several processes, a storage folder each', () => {
  it.each(['kill', 'close'] as const)(
    'loses no unit of two workers that record through an outage, then end (%s), when they start again',
    async (how) => {
      await server.purchase('acme', 'team')
      const folders = [join(dir, 'worker-0'), join(dir, 'worker-1')]
      expect(await Promise.all([worker(folders[0]!, 40, how), worker(folders[1]!, 60, how)])).toEqual(
        how === 'kill' ? [null, null] : [0, 0],
      )
      const restarted = folders.map((folder) => start({ storage: createFileStorage(folder) }))
      await Promise.all(restarted.map((client) => client.load('acme')))
      await expect
        .poll(async () => {
          const pending = await Promise.all(restarted.map(async (client) => (await client.flush()).pending))
          return pending.every((count) => count === 0) && (await totals('acme'))
        })
        .toEqual({ 'api-calls': 100 })
    },
    30_000,
  )
})

describe('one bad line cannot poison a batch', () => {
  it('stores three customers’ units exactly and sets aside the one line no server would take', async () => {
    for (const customer of ['acme', 'globex', 'initech']) await server.purchase(customer, 'team')
    const client = start()
    const errors: string[] = []
    client.on('error', ({ error }) => errors.push(error.code))
    client.record('api-calls', 3, { subject: 'acme' })
    client.record('api-calls', 5, { subject: 'globex' })
    client.record('api-calls', 7, { subject: 'initech' })
    client.record('api-calls', 1, { subject: 'alice@example.com' })
    const flushed = await client.flush()
    expect(flushed).toEqual({ sent: 3, pending: 0 })
    expect(await totals('acme')).toEqual({ 'api-calls': 3 })
    expect(await totals('globex')).toEqual({ 'api-calls': 5 })
    expect(await totals('initech')).toEqual({ 'api-calls': 7 })
    const aside = client.setAsideUsage()
    expect(aside).toHaveLength(1)
    expect(aside[0]).toMatchObject({
      subject: 'alice@example.com',
      metric: 'api-calls',
      amount: 1,
      reason: 'subject: 1 to 64 of A-Za-z0-9._:-',
    })
    expect(errors).toContain('usage_rejected')
    // Sending again changes nothing: the good lines were counted once, the bad one is still aside.
    expect(await client.flush()).toEqual({ sent: 0, pending: 0 })
    expect(await totals('acme')).toEqual({ 'api-calls': 3 })
  })

  it('sets aside only the lines the server refuses one by one, with its reason, and counts the rest', async () => {
    await server.purchase('acme', 'team')
    const client = start()
    client.record('api-calls', 2, { subject: 'acme' })
    client.record('teleports', 9, { subject: 'acme' })
    client.record('api-calls', 4, { subject: 'nobody' })
    await client.flush()
    expect(await totals('acme')).toEqual({ 'api-calls': 2 })
    expect(
      client
        .setAsideUsage()
        .map((line) => [line.subject, line.metric, line.reason])
        .sort(),
    ).toEqual([
      ['acme', 'teleports', 'unknown metric'],
      ['nobody', 'api-calls', 'unknown customer'],
    ])
  })

  it('splits an aggregate before it passes the largest amount a line may carry', async () => {
    await server.purchase('acme', 'business')
    const client = start()
    for (let i = 0; i < 3; i++) client.record('api-calls', 6e14, { subject: 'acme' })
    expect(await client.flush()).toEqual({ sent: 3, pending: 0 })
    expect(await totals('acme')).toEqual({ 'api-calls': 1.8e15 })
    expect(client.setAsideUsage()).toEqual([])
  })

  it('refuses at the door, with usage_invalid, what no line can carry: nothing is counted', () => {
    const client = start()
    const bad: Array<[string, number, Record<string, unknown>]> = [
      ['api-calls', 2e15, {}],
      ['x'.repeat(257), 1, {}],
      ['api-calls', 1, { dimensions: { region: 'x'.repeat(513) } }],
      ['api-calls', 1, { dimensions: { ['d'.repeat(129)]: 'eu' } }],
      [
        'api-calls',
        1,
        { dimensions: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`d${i}`, 'v'])) },
      ],
    ]
    for (const [metric, amount, extra] of bad) {
      let thrown: unknown
      try {
        client.record(metric, amount, { subject: 'acme', ...extra })
      } catch (error) {
        thrown = error
      }
      expect(isEntitlementError(thrown, 'usage_invalid')).toBe(true)
    }
    expect(client.stats().usage).toMatchObject({ recorded: 0, pending: 0 })
  })
})

describe('one customer’s state never fails another’s usage', () => {
  const catalogWith = async (change: (catalog: { plans: Record<string, unknown> }) => void) => {
    const catalog = JSON.parse(await readFile('examples/license-server/catalog.json', 'utf8'))
    change(catalog)
    const path = join(dir, `catalog-${Math.random().toString(36).slice(2)}.json`)
    await writeFile(path, JSON.stringify(catalog))
    return path
  }

  it('a license whose plan left the catalog: its lines are refused alone, its token is a 503, others go on', async () => {
    const db = join(dir, 'license.db')
    const withLegacy = await catalogWith((catalog) => {
      catalog.plans.legacy = {
        name: 'Legacy',
        tier: 1,
        features: { export: true, 'api-calls': { cap: { limit: 50, period: 'month' } } },
      }
    })
    await server.close()
    server = await startTestServer(clock, 600, { db, catalog: withLegacy })
    await server.purchase('oldco', 'legacy')
    await server.purchase('acme', 'team')
    // The operator deploys a catalog without the plan; the server restarts on the same database.
    await server.close()
    server = await startTestServer(clock, 600, { db })
    const token = await server.call('GET', '/v1/entitlements/oldco', SERVICE)
    expect(token.status).toBe(503)
    expect(token.headers.get('retry-after')).toBe('300')
    expect((await problemOf(token)).title).toBe('Plan unavailable')
    const client = start()
    client.record('api-calls', 3, { subject: 'oldco' })
    client.record('api-calls', 4, { subject: 'acme' })
    expect(await client.flush()).toEqual({ sent: 1, pending: 0 })
    expect(await totals('acme')).toEqual({ 'api-calls': 4 })
    expect(client.setAsideUsage().map((line) => [line.subject, line.reason])).toEqual([
      ['oldco', 'not priced: the plan legacy is not in the catalog'],
    ])
  })

  it('a retired plan is honoured for those who hold it and refused to new orders', async () => {
    const db = join(dir, 'license.db')
    await server.close()
    server = await startTestServer(clock, 600, { db })
    await server.purchase('acme', 'starter')
    await server.close()
    const retired = await catalogWith((catalog) => {
      ;(catalog.plans.starter as { retired?: boolean }).retired = true
    })
    server = await startTestServer(clock, 600, { db, catalog: retired })
    expect((await server.call('GET', '/v1/entitlements/acme', SERVICE)).status).toBe(200)
    const client = start()
    client.record('api-calls', 2, { subject: 'acme' })
    await client.flush()
    expect(await totals('acme')).toEqual({ 'api-calls': 2 })
    const order = await server.order({
      orderId: 'o-new',
      type: 'purchase',
      customer: { id: 'newco' },
      sku: 'starter',
    })
    expect(order.status).toBe(422)
    expect((await problemOf(order)).title).toBe('Plan retired')
  })

  it('refuses SKU, add-on and feature names that are Object.prototype’s, at order time, with no 500', async () => {
    await server.purchase('acme', 'team')
    for (const sku of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      const order = await server.order({
        orderId: `o-${sku}`,
        type: 'purchase',
        customer: { id: 'evil' },
        sku,
      })
      expect([422]).toContain(order.status)
    }
    for (const addons of [['constructor'], ['toString'], ['__proto__']]) {
      const order = await server.order({
        orderId: `o-addon-${addons[0]}`,
        type: 'upgrade',
        customer: { id: 'acme' },
        addons,
      })
      expect(order.status).toBe(422)
    }
    for (const feature of ['constructor', '__proto__', 'toString', 'valueOf']) {
      const ask = await server.call('POST', '/v1/access-requests', SERVICE, {
        subject: 'acme',
        feature,
        requestedBy: 'mallory',
      })
      expect(ask.status).toBe(422)
    }
    const client = start()
    client.record('constructor', 1, { subject: 'acme' })
    client.record('__proto__', 1, { subject: 'acme' })
    client.record('api-calls', 1, { subject: 'acme' })
    expect(await client.flush()).toEqual({ sent: 1, pending: 0 })
    expect(client.setAsideUsage().map((line) => line.reason)).toEqual(['unknown metric', 'unknown metric'])
    expect((await server.call('GET', '/v1/entitlements/acme', SERVICE)).status).toBe(200)
  })
})

type Fate = 'counted' | 'thrown' | 'set aside'

/** One random record, valid or broken by one rule, and what the protocol says becomes of it. */
function randomRecord(random: () => number) {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!
  const roll = random()
  let subject = pick(['acme', 'globex', 'initech'])
  let metric = pick(['api-calls', 'storage-gb'])
  let amount: unknown = Math.floor(random() * 1000)
  let dimensions: unknown
  let fate: Fate = 'counted'
  // Rare, so no total passes 2^53 (where sums stop being exact): each still splits its line.
  if (roll < 0.005) amount = 4e14 + Math.floor(random() * 2e14)
  else if (roll < 0.04)
    [amount, fate] = [pick([-1, Number.NaN, Number.POSITIVE_INFINITY, 2e15, '3']), 'thrown']
  else if (roll < 0.06) [metric, fate] = [pick(['', 'm'.repeat(257)]), 'thrown']
  else if (roll < 0.08)
    [dimensions, fate] = [
      pick([{ region: 'x'.repeat(513) }, { region: 7 }, { ['n'.repeat(129)]: 'v' }, ['eu']]),
      'thrown',
    ]
  else if (roll < 0.11) [subject, fate] = [pick(['alice@example.com', 's'.repeat(65), 'a/b']), 'set aside']
  else if (roll < 0.13) [subject, fate] = ['nobody', 'set aside']
  else if (roll < 0.15) [metric, fate] = ['teleports', 'set aside']
  else if (roll < 0.35) dimensions = { region: pick(['eu', 'us']) }
  return { subject, metric, amount, dimensions, fate }
}

describe('property: every record is counted once or accounted for as refused', () => {
  it('random records, valid and broken by each rule, across a restart with the journal', async () => {
    const db = join(dir, 'license.db')
    await server.close()
    server = await startTestServer(clock, 600, { db })
    for (const customer of ['acme', 'globex', 'initech']) await server.purchase(customer, 'business')
    const random = seeded(1337)
    const expected = new Map<string, number>()
    const asideExpected = new Map<string, number>()
    let thrownExpected = 0
    let thrown = 0
    const feed = (client: EntitlementsClient, count: number) => {
      for (let i = 0; i < count; i++) {
        const record = randomRecord(random)
        const key = `${record.subject}/${record.metric}`
        try {
          client.record(record.metric, record.amount as number, {
            subject: record.subject,
            ...(record.dimensions === undefined
              ? {}
              : { dimensions: record.dimensions as Record<string, string> }),
          })
        } catch (error) {
          expect(isEntitlementError(error, 'usage_invalid')).toBe(true)
          thrown++
        }
        if (record.fate === 'thrown') thrownExpected++
        const into =
          record.fate === 'counted' ? expected : record.fate === 'set aside' ? asideExpected : undefined
        into?.set(key, (into.get(key) ?? 0) + (record.amount as number))
      }
    }
    // First run: some batches reach the server, more is recorded, then the process goes with no network time.
    const first = start({ usage: { flushIntervalMs: 60_000, persistIntervalMs: 50, maxBatchLines: 25 } })
    feed(first, 1500)
    await first.flush()
    feed(first, 1500)
    await first.close({ deadlineMs: 0 })
    // The server restarts too, on the same database.
    await server.close()
    server = await startTestServer(clock, 600, { db })
    const second = start({ usage: { flushIntervalMs: 60_000, persistIntervalMs: 50, maxBatchLines: 25 } })
    feed(second, 1500)
    expect((await second.flush()).pending).toBe(0)

    expect(thrown).toBe(thrownExpected)
    for (const customer of ['acme', 'globex', 'initech']) {
      const stored = await totals(customer)
      for (const metric of ['api-calls', 'storage-gb'])
        expect([customer, metric, stored[metric] ?? 0]).toEqual([
          customer,
          metric,
          expected.get(`${customer}/${metric}`) ?? 0,
        ])
    }
    const aside = new Map<string, number>()
    for (const line of second.setAsideUsage() as UsageLine[]) {
      expect(line.reason).toBeTruthy()
      const key = `${line.subject}/${line.metric}`
      aside.set(key, (aside.get(key) ?? 0) + line.amount)
    }
    expect(Object.fromEntries(aside)).toEqual(Object.fromEntries(asideExpected))
  })
})
