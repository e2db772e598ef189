import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createEntitlements, type EntitlementsClient, metering } from '../../src/index.js'
import { createFileStorage } from '../../src/node/index.js'
import { startFaultProxy } from './fault-proxy.js'
import { SERVICE, startTestServer, type TestServer } from './helpers.js'

// Credits on the reference server: the AI studio add-on grants 1 000 AI credits a month (200 roll over), packs of
// 5 000 are sold by top-up orders, admins grant promotional credits. A completion costs 5; tokens 1 per 1 000.

let server: TestServer | undefined
const clients: EntitlementsClient[] = []
const closers: Array<() => Promise<unknown>> = []
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close({ deadlineMs: 500 })))
  clients.length = 0
  for (const close of closers.splice(0)) await close()
  await server?.close()
  server = undefined
})

const DAY = 86_400_000

function instance(url: string, clock: { now: number }, via = url) {
  const made = createEntitlements({
    metering,
    server: { url: via, apiKey: SERVICE, timeoutMs: 1000, events: false },
    keys: new URL('/.well-known/jwks.json', url),
    issuer: url,
    audience: 'acme-editor',
    storage: createFileStorage(mkdtempSync(join(tmpdir(), 'entitle-credits-'))),
    usage: { flushIntervalMs: 3_600_000 },
    platform: { now: () => clock.now },
  })
  clients.push(made)
  return made
}

const claims = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as {
    ent: {
      v: number
      credits?: Record<string, { grants: Array<{ id: string; remaining: number }>; spent: number }>
    }
  }

interface Ledger {
  balances: Record<
    string,
    {
      available: number
      overdraft: number
      spent: number
      grants: Array<{ id: string; category: string; remaining: number; burned: number; state: string }>
    }
  >
  burns: Array<{ grant: string | null; burned: number; line: string }>
}

async function ledger(at?: number): Promise<Ledger> {
  const query = at === undefined ? '' : `?at=${new Date(at).toISOString()}`
  const response = await server!.admin('GET', `/customers/acme/credits${query}`)
  expect(response.status).toBe(200)
  return (await response.json()) as Ledger
}

async function topUp(orderId: string, quantity = 1) {
  const response = await server!.order({
    orderId,
    type: 'topup',
    customer: { id: 'acme' },
    pack: 'ai-credits-5000',
    quantity,
  })
  expect(response.status).toBe(200)
}

/** A catalog whose credits may go 20 below zero. */
function overdraftCatalog(): string {
  const catalog = JSON.parse(readFileSync('examples/license-server/catalog.json', 'utf8'))
  catalog.credits['ai-credits'].overdraft = 20
  const file = join(mkdtempSync(join(tmpdir(), 'entitle-credits-catalog-')), 'catalog.json')
  writeFileSync(file, JSON.stringify(catalog))
  return file
}

describe('credits on the reference server', () => {
  it('burns four grants in the burn order, once per usage line, and the ledger shows the balance at any moment', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    server = await startTestServer(clock, 600)
    await server.purchase('acme', 'team', { addons: ['ai-studio'] })
    await server.purchase('globex', 'team')
    // A customer with no credits keeps v1 tokens; one with credits gets v2.
    expect(claims(await server.tokenOf('globex')).ent.v).toBe(1)
    expect(claims(await server.tokenOf('acme')).ent.v).toBe(2)
    await topUp('top-1')
    const grant = async (body: Record<string, unknown>) => {
      const response = await server!.admin('POST', '/customers/acme/credits/grants', {
        type: 'ai-credits',
        ...body,
      })
      expect(response.status).toBe(201)
      return ((await response.json()) as { id: string }).id
    }
    const promo = await grant({ amount: 50, expiresAt: new Date(clock.now + 5 * DAY).toISOString() })
    const priority = await grant({
      amount: 30,
      priority: 0,
      category: 'paid',
      expiresAt: new Date(clock.now + 2 * DAY).toISOString(),
    })
    const before = clock.now
    clock.now += 1000
    // 1 100 credits of usage: 220 completions.
    const client = instance(server.url, clock)
    await client.load('acme')
    for (let i = 0; i < 220; i++)
      expect((await client.consume('ai-completion', { subject: 'acme' })).allowed).toBe(true)
    await client.flush()
    const now = await ledger()
    const grants = Object.fromEntries(now.balances['ai-credits']!.grants.map((g) => [g.id, g.burned]))
    // Earliest expiry first (priority 0 for all): the 2-day paid grant, the 5-day promo, the month's allowance,
    // then the pack (no expiry, last).
    expect(grants[priority]).toBe(30)
    expect(grants[promo]).toBe(50)
    expect(Object.entries(grants).find(([id]) => id.startsWith('allowance:'))![1]).toBe(1000)
    expect(grants['order:top-1']).toBe(20)
    expect(now.balances['ai-credits']).toMatchObject({ available: 4980, spent: 1100, overdraft: 0 })
    // The balance at a moment before the burns.
    expect((await ledger(before)).balances['ai-credits']).toMatchObject({ available: 6080, spent: 0 })
    // The same usage line sent again burns nothing.
    const line = {
      id: 'line-replayed-1',
      subject: 'acme',
      metric: 'tokens',
      amount: 10_000,
      start: clock.now,
      end: clock.now,
    }
    for (let i = 0; i < 2; i++) {
      const response = await server.call('POST', '/v1/usage', SERVICE, { lines: [line] })
      expect(response.status).toBeLessThan(300)
    }
    const after = await ledger()
    expect(after.balances['ai-credits']).toMatchObject({ available: 4970, spent: 1110 })
    expect(after.burns.filter((burn) => burn.line === 'line-replayed-1')).toHaveLength(1)
    // A fresh token's snapshot agrees with the ledger.
    const token = claims(await server.tokenOf('acme'))
    expect(token.ent.credits!['ai-credits']!.spent).toBe(1110)
    expect(token.ent.credits!['ai-credits']!.grants.reduce((sum, g) => sum + g.remaining, 0)).toBe(4970)
  })

  it('a top-up during an outage is reconciled with what was burned offline: nothing lost, nothing spent twice', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    server = await startTestServer(clock, 600)
    await server.purchase('acme', 'team', { addons: ['ai-studio'] })
    const proxy = await startFaultProxy(server.url)
    closers.push(proxy.close)
    const client = instance(server.url, clock, proxy.url)
    await client.load('acme')
    expect(client.balance('ai-credits', { subject: 'acme' })?.available).toBe(1000)
    proxy.cut()
    // Offline: 150 completions (750 credits) against the snapshot; meanwhile the customer buys 5 000.
    for (let i = 0; i < 150; i++)
      expect(client.consumeSync('ai-completion', { subject: 'acme' }).allowed).toBe(true)
    await topUp('top-outage')
    expect(client.balance('ai-credits', { subject: 'acme' })).toMatchObject({
      available: 250,
      spentSinceSnapshot: 750,
    })
    expect((await client.flush()).sent).toBe(0)
    // Back online: the usage is sent (and burned once), a fresh token carries the top-up and the burns.
    proxy.restore()
    clock.now += 1000
    await client.flush()
    // A snapshot read after the server stored the lines holds them (one millisecond later: the SDK counts units the
    // server confirmed at the very moment of a snapshot as not in it, in case that read raced the write).
    clock.now += 1
    await client.refresh('acme')
    const view = client.balance('ai-credits', { subject: 'acme' })!
    const ledgerNow = (await ledger()).balances['ai-credits']!
    expect(ledgerNow).toMatchObject({ available: 5250, spent: 750 })
    expect(view).toMatchObject({ available: 5250, spentSinceSnapshot: 0 })
    // Flushing again sends nothing new, and the balance does not move: no double count.
    await client.flush()
    clock.now += 1
    await client.refresh('acme')
    expect(client.balance('ai-credits', { subject: 'acme' })?.available).toBe(5250)
    expect((await ledger()).balances['ai-credits']!.spent).toBe(750)
  })

  it('rolls over at most 200 of the month’s allowance, grants the next month’s, and expires the old at its end', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    server = await startTestServer(clock, 600)
    await server.purchase('acme', 'team', { addons: ['ai-studio'] })
    const client = instance(server.url, clock)
    await client.load('acme')
    // 100 completions: 500 of the month's 1 000 used, 500 left, 200 of which roll over.
    for (let i = 0; i < 100; i++) client.consumeSync('ai-completion', { subject: 'acme' })
    await client.flush()
    const monthEnd = Date.UTC(2026, 11, 20, 12)
    clock.now = monthEnd - 1
    await client.refresh('acme')
    expect(client.balance('ai-credits', { subject: 'acme' })?.available).toBe(500)
    clock.now = monthEnd
    // The old allowance is worth nothing at its end, before any token or job says so.
    expect(client.balance('ai-credits', { subject: 'acme' })?.available).toBe(0)
    expect(client.checkSync('ai-completion', { subject: 'acme' }).reason).toBe('credits_exhausted')
    await client.refresh('acme')
    const view = client.balance('ai-credits', { subject: 'acme' })!
    expect(view.available).toBe(1200)
    expect(view.grants.map((grant) => [grant.id.split(':')[0], grant.remaining]).sort()).toEqual([
      ['allowance', 1000],
      ['rollover', 200],
    ])
    const month = (await ledger()).balances['ai-credits']!
    expect(month.grants.filter((grant) => grant.state === 'expired')).toHaveLength(1)
  })

  it('an overdraft down to the plan’s bound is allowed and flagged; the next grant pays it back first', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    server = await startTestServer(clock, 600, { catalog: overdraftCatalog() })
    await server.purchase('acme', 'team', { addons: ['ai-studio'] })
    const client = instance(server.url, clock)
    await client.load('acme')
    for (let i = 0; i < 200; i++) client.consumeSync('ai-completion', { subject: 'acme' })
    const into = client.consumeSync('ai-completion', { subject: 'acme', amount: 4 })
    expect(into).toMatchObject({ allowed: true, reason: 'overdraft' })
    expect(into.credits?.overdraft).toBe(20)
    expect(client.consumeSync('ai-completion', { subject: 'acme' }).reason).toBe('credits_exhausted')
    await client.flush()
    clock.now += 1000
    expect((await ledger()).balances['ai-credits']).toMatchObject({
      available: -20,
      overdraft: 20,
      spent: 1020,
    })
    await client.refresh('acme')
    // The token says no room is left to overdraw: a fresh instance denies too.
    const fresh = instance(server.url, clock)
    await fresh.load('acme')
    expect(fresh.checkSync('ai-completion', { subject: 'acme' }).reason).toBe('credits_exhausted')
    await topUp('top-after-overdraft')
    expect((await ledger()).balances['ai-credits']).toMatchObject({
      available: 4980,
      overdraft: 0,
      spent: 1020,
    })
    await fresh.refresh('acme')
    expect(fresh.balance('ai-credits', { subject: 'acme' })?.available).toBe(4980)
  })

  it('admins void a grant (worth nothing from then) and the change is pushed to the customer', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    server = await startTestServer(clock, 600)
    await server.purchase('acme', 'team', { addons: ['ai-studio'] })
    const response = await server.admin('POST', '/customers/acme/credits/grants', {
      type: 'ai-credits',
      amount: 70,
    })
    const { id, category } = (await response.json()) as { id: string; category: string }
    expect(category).toBe('promotional')
    expect((await ledger()).balances['ai-credits']!.available).toBe(1070)
    const voided = await server.admin('POST', `/customers/acme/credits/grants/${id}/void`)
    expect(voided.status).toBe(200)
    expect((await ledger()).balances['ai-credits']!.available).toBe(1000)
    const events = await server.call('GET', '/v1/changes?after=0', SERVICE)
    const text = await events.text()
    expect(text).toContain('voided')
    // Bad input: a typed problem, nothing changed.
    const bad = await server.admin('POST', '/customers/acme/credits/grants', {
      type: 'ai-credits',
      amount: -1,
    })
    expect(bad.status).toBe(422)
    expect(bad.headers.get('content-type')).toContain('application/problem+json')
    const unknown = await server.admin('POST', '/customers/acme/credits/grants', { type: 'gold', amount: 1 })
    expect(unknown.status).toBe(422)
  })
})
