import { mkdtempSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import { afterEach, describe, expect, it } from 'vitest'
import { releaseLeasesOnPageHide } from '../../src/browser/index.js'
import { requireEntitlement } from '../../src/express/index.js'
import { createEntitlements, type HeldLease, type LeaseEvents, type LeaseResult } from '../../src/index.js'
import { createFileStorage, releaseLeasesOnExit } from '../../src/node/index.js'
import { EntitlementsProvider } from '../../src/openfeature/server.js'
import { manualPlatform } from '../client/harness.js'
import { importBrowserBuild } from './browser-build.js'
import { cadCatalog } from './cad-catalog.js'
import { startFaultProxy } from './fault-proxy.js'
import { SERVICE, startTestServer, type TestServer } from './helpers.js'

// A CAD vendor sells floating seats: two at once per customer, counted per machine, leases of 60 s renewed every
// 20 s, 10 s of grace past a missed renewal, revival within 5 minutes, and borrowing for up to a week with one seat
// never lent. The render farm is a pool of its own, per process.

let server: TestServer | undefined
const closers: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await server?.close()
  server = undefined
})

type Manual = ReturnType<typeof manualPlatform>

function instance(url: string, manual: Manual, folder = mkdtempSync(join(tmpdir(), 'entitle-cad-'))) {
  const made = createEntitlements({
    server: { url, apiKey: SERVICE, timeoutMs: 1000 },
    keys: new URL('/.well-known/jwks.json', url),
    issuer: server!.url,
    audience: 'acme-editor',
    storage: createFileStorage(folder),
    platform: manual.platform,
  })
  closers.push(() => made.close({ deadlineMs: 500 }))
  return made
}

function held(result: LeaseResult): HeldLease {
  if (!result.acquired) throw new Error(`not acquired: ${result.reason} ${result.detail ?? ''}`)
  return result
}

function record(lease: HeldLease) {
  const seen: Array<[keyof LeaseEvents, unknown]> = []
  for (const type of ['renewed', 'degraded', 'lost', 'revived'] as const)
    lease.on(type, (event) => seen.push([type, event]))
  return seen
}

async function start(seats = 2, tokenTtlSec = 3600) {
  const manual = manualPlatform(Date.UTC(2026, 10, 20, 12))
  const clock = {
    get now() {
      return manual.now
    },
  }
  server = await startTestServer(clock, tokenTtlSec, { catalog: cadCatalog(seats), leaseSweepMs: 3_600_000 })
  await server.purchase('acme', 'cad')
  return manual
}

const leasesOf = async (customer: string) =>
  (
    (await (await server!.admin('GET', `/customers/${customer}/leases`)).json()) as {
      leases: Array<{ id: string; holder: string; pool: string; lastHeartbeat: string; borrowed: boolean }>
    }
  ).leases

describe('floating licenses on the reference server', () => {
  it('a pool of 2: a third holder is told in use, limit and retry; a release frees the seat', async () => {
    const manual = await start()
    await server!.purchase('globex', 'team')
    const version = (token: string) =>
      (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { ent: { v: number } }).ent.v
    expect(version(await server!.tokenOf('acme'))).toBe(2)
    // A customer with nothing floating keeps v1 tokens.
    expect(version(await server!.tokenOf('globex'))).toBe(1)
    const [a, b, c] = [0, 1, 2].map(() => instance(server!.url, manual))
    expect((await c!.check('draw', { subject: 'acme' })).reason).toBe('lease_required')
    const first = held(
      await a!.lease('seats', { subject: 'acme', holder: 'host-a', metadata: { user: 'ana' } }),
    )
    held(await b!.lease('seats', { subject: 'acme', holder: 'host-b' }))
    expect(await a!.check('draw', { subject: 'acme' })).toMatchObject({ allowed: true, reason: 'granted' })
    const third = await c!.lease('seats', { subject: 'acme', holder: 'host-c' })
    expect(third).toMatchObject({ acquired: false, reason: 'pool_full', inUse: 2, limit: 2 })
    // The first seat comes free when its lease would end: 60 s from now.
    expect(!third.acquired && third.retryAt).toBe(manual.now + 60_000)
    expect((await c!.check('draw', { subject: 'acme' })).reason).toBe('lease_required')
    // The render farm is another pool: the seats lease does not open it.
    expect((await a!.check('render', { subject: 'acme' })).reason).toBe('lease_required')
    held(await a!.lease('farm', { subject: 'acme' }))
    expect((await a!.check('render', { subject: 'acme' })).allowed).toBe(true)
    const listed = await leasesOf('acme')
    expect(listed.map((lease) => lease.holder).sort()).toEqual([
      'host-a',
      'host-b',
      expect.stringMatching(/^process-/),
    ])
    expect(await first.release()).toBe(true)
    expect(first.state).toBe('released')
    expect((await a!.check('draw', { subject: 'acme' })).reason).toBe('lease_required')
    held(await c!.lease('seats', { subject: 'acme', holder: 'host-c' }))
    expect((await c!.check('draw', { subject: 'acme' })).allowed).toBe(true)
  })

  it('the browser build loads the lease code from a chunk of its own at the first lease(), and it holds a seat', async () => {
    const manual = await start()
    // The keeper, renewals and borrows are in their chunk only: a page that never leases never fetches them.
    const browser = await importBrowserBuild('lease-keeper', 'entitle:borrow:')
    const tab = browser.createEntitlements({
      server: { url: server!.url, apiKey: SERVICE, timeoutMs: 1000 },
      keys: new URL('/.well-known/jwks.json', server!.url),
      issuer: server!.url,
      audience: 'acme-editor',
      platform: manual.platform,
    })
    closers.push(() => tab.close({ deadlineMs: 500 }))
    expect((await tab.check('draw', { subject: 'acme' })).reason).toBe('lease_required')
    const seat = held(await tab.lease('seats', { subject: 'acme', holder: 'tab-1' }))
    expect(await tab.check('draw', { subject: 'acme' })).toMatchObject({ allowed: true, reason: 'granted' })
    expect((await leasesOf('acme')).map((lease) => lease.holder)).toEqual(['tab-1'])
    await manual.advance(20_000)
    expect(seat.state).toBe('held')
    await tab.close({ deadlineMs: 500 })
    expect(await leasesOf('acme')).toEqual([])
  })

  it('50 concurrent acquires of a pool of 10 hold exactly 10; the same holder asking again keeps its one seat', async () => {
    await start(10)
    const ask = (holder: string) =>
      server!.call('POST', '/v1/leases', SERVICE, { subject: 'acme', pool: 'seats', holder })
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => ask(`host-${i}`)))
    const statuses = answers.map((answer) => answer.status)
    expect(statuses.filter((status) => status === 201)).toHaveLength(10)
    expect(statuses.filter((status) => status === 409)).toHaveLength(40)
    const refused = answers.find((answer) => answer.status === 409)!
    expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/)
    expect(await refused.json()).toMatchObject({
      type: 'urn:entitle:problem:pool-full',
      inUse: 10,
      seats: 10,
    })
    const holder = (await leasesOf('acme'))[0]!.holder
    const again = await ask(holder)
    expect(again.status).toBe(200)
    expect(await leasesOf('acme')).toHaveLength(10)
  })

  it('heartbeats keep one holder for ten lease lengths; a 2 s cut keeps the lease; a long one loses it, and a renewal after it revives it', async () => {
    const manual = await start()
    const proxy = await startFaultProxy(server!.url)
    closers.push(proxy.close)
    const app = instance(proxy.url, manual)
    const lease = held(await app.lease('seats', { subject: 'acme', holder: 'host-a' }))
    const seen = record(lease)
    const id = lease.id
    for (let i = 0; i < 10; i++) await manual.advance(60_000)
    expect(lease.id).toBe(id)
    expect(lease.state).toBe('held')
    expect(seen.filter(([type]) => type === 'renewed').length).toBeGreaterThanOrEqual(30)
    expect((await app.check('draw', { subject: 'acme' })).allowed).toBe(true)

    // A renewal is due 18 s after the last (20 s less 10% jitter at random 0.5): cut across it for 2 s.
    seen.length = 0
    while (seen.length === 0) await manual.advance(1000)
    await manual.advance(17_000)
    seen.length = 0
    proxy.cut()
    await manual.advance(2_000)
    proxy.restore()
    expect(seen.map(([type]) => type)).toContain('degraded')
    await manual.advance(5_000)
    expect(lease.state).toBe('held')
    expect(seen.map(([type]) => type)).toContain('renewed')
    expect(lease.id).toBe(id)

    // A cut longer than the lease and its grace: lost, checks deny, the server frees the seat.
    seen.length = 0
    proxy.cut()
    await manual.advance(75_000)
    expect(seen.map(([type]) => type)).toContain('lost')
    expect(lease.state).toBe('lost')
    expect((await app.check('draw', { subject: 'acme' })).reason).toBe('lease_required')
    expect(await leasesOf('acme')).toEqual([])
    // Back within the revival window, with a seat free: the same lease again.
    proxy.restore()
    await manual.advance(40_000)
    expect(seen.map(([type]) => type)).toContain('revived')
    expect(lease.state).toBe('held')
    expect(lease.id).toBe(id)
    expect((await app.check('draw', { subject: 'acme' })).allowed).toBe(true)
  })

  it('a lease lost while its seat was taken is gone for good when the holder is back', async () => {
    const manual = await start(1)
    const proxy = await startFaultProxy(server!.url)
    closers.push(proxy.close)
    const a = instance(proxy.url, manual)
    const b = instance(server!.url, manual)
    const lease = held(await a.lease('seats', { subject: 'acme', holder: 'host-a' }))
    const seen = record(lease)
    proxy.cut()
    await manual.advance(61_000)
    // The seat is free on the server as soon as the lease ended: b takes it.
    held(await b.lease('seats', { subject: 'acme', holder: 'host-b' }))
    proxy.restore()
    await manual.advance(30_000)
    expect(seen).toContainEqual(['lost', { final: true, reason: expect.stringContaining('seat was taken') }])
    expect((await a.check('draw', { subject: 'acme' })).reason).toBe('lease_required')
    expect((await b.check('draw', { subject: 'acme' })).allowed).toBe(true)
  })

  it('borrows for a week: held offline after a restart, denied at its end, the reserve never lent, returned early', async () => {
    // A laptop that borrows for days holds an entitlement token that lasts as long (here 8 days).
    const manual = await start(2, 8 * 86_400)
    const folder = mkdtempSync(join(tmpdir(), 'entitle-borrow-'))
    const laptop = instance(server!.url, manual, folder)
    const borrow = held(
      await laptop.lease('seats', { subject: 'acme', holder: 'laptop', borrowMs: 3 * 86_400_000 }),
    )
    expect(borrow.borrowed).toBe(true)
    // One seat of two is never lent: a second borrow is refused while the seat itself is free.
    const other = instance(server!.url, manual)
    expect(
      await other.lease('seats', { subject: 'acme', holder: 'desk', borrowMs: 86_400_000 }),
    ).toMatchObject({
      acquired: false,
      reason: 'pool_full',
    })
    held(await other.lease('seats', { subject: 'acme', holder: 'desk' }))
    // The laptop goes offline: the server stops, the app restarts with its file storage.
    await other.close({ deadlineMs: 200 })
    await laptop.close({ deadlineMs: 200 })
    const url = server!.url
    await server!.close()
    const offline = createEntitlements({
      server: { url, apiKey: SERVICE, timeoutMs: 500 },
      keys: new URL('/.well-known/jwks.json', url),
      issuer: url,
      audience: 'acme-editor',
      storage: createFileStorage(folder),
      platform: manual.platform,
    })
    closers.push(() => offline.close({ deadlineMs: 200 }))
    await manual.advance(2 * 86_400_000)
    const again = held(await offline.lease('seats', { subject: 'acme', holder: 'laptop' }))
    expect(again).toMatchObject({ borrowed: true, id: borrow.id })
    expect((await offline.check('draw', { subject: 'acme' })).allowed).toBe(true)
    const end = again.lease.expiresAt
    await manual.advance(end - manual.now - 1)
    expect(offline.checkSync('draw', { subject: 'acme' }).allowed).toBe(true)
    await manual.advance(1)
    expect(offline.checkSync('draw', { subject: 'acme' }).reason).toBe('lease_required')
  })

  it('a borrow returned early frees its seat on the server; admins list and force-release leases, and the stream says so', async () => {
    const manual = await start()
    const app = instance(server!.url, manual)
    const changes = async () =>
      (
        (await (await server!.call('GET', '/v1/changes?after=0', SERVICE)).json()) as {
          events: Array<{ event: string; subject: string; lease?: string }>
        }
      ).events.filter((event) => event.event.startsWith('lease.'))
    const borrow = held(await app.lease('seats', { subject: 'acme', holder: 'laptop', borrowMs: 86_400_000 }))
    expect((await leasesOf('acme')).map((lease) => lease.borrowed)).toEqual([true])
    expect(await borrow.release()).toBe(true)
    expect(await leasesOf('acme')).toEqual([])
    const desk = held(await app.lease('seats', { subject: 'acme', holder: 'desk' }))
    const seen = record(desk)
    const forced = await server!.admin('DELETE', `/leases/${desk.id}`)
    expect(forced.status).toBe(200)
    await manual.advance(20_000)
    expect(seen).toContainEqual(['lost', { final: true, reason: expect.stringContaining('released') }])
    // A lease left to run out (its holder crashed) ends on the stream too, at the sweep or the next acquire.
    const crashed = await server!.call('POST', '/v1/leases', SERVICE, {
      subject: 'acme',
      pool: 'farm',
      holder: 'p-9',
    })
    expect(crashed.status).toBe(201)
    await manual.advance(61_000)
    expect(server!.server.services.leases.sweep()).toBe(1)
    const events = await changes()
    expect(events.map((event) => event.event)).toEqual(['lease.released', 'lease.released', 'lease.expired'])
    expect(events.every((event) => event.subject === 'acme')).toBe(true)
  })

  it('the Express guard and the OpenFeature provider deny a floating feature until a seat is held', async () => {
    const manual = await start()
    const client = instance(server!.url, manual)
    const app = express()
    app.get(
      '/draw',
      requireEntitlement(client, 'draw', { context: () => ({ subject: 'acme' }) }),
      (req, res) => res.json({ reason: req.entitlement?.reason }),
    )
    const listening = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => listening.once('listening', resolve))
    closers.push(() => new Promise((resolve) => listening.close(resolve)))
    const base = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`
    const provider = new EntitlementsProvider(client)
    const before = await fetch(`${base}/draw`)
    expect(before.status).toBe(403)
    expect(await before.json()).toMatchObject({ type: 'urn:entitle:decision:lease_required' })
    expect(await provider.resolveBooleanEvaluation('draw', true, { targetingKey: 'acme' })).toMatchObject({
      value: false,
      flagMetadata: { reason: 'lease_required' },
    })
    held(await client.lease('seats', { subject: 'acme', holder: 'host-a' }))
    expect(await (await fetch(`${base}/draw`)).json()).toEqual({ reason: 'granted' })
    expect(await provider.resolveBooleanEvaluation('draw', false, { targetingKey: 'acme' })).toMatchObject({
      value: true,
    })
    // A check for another machine's holder does not go by this machine's lease.
    expect(
      await provider.resolveBooleanEvaluation('draw', true, { targetingKey: 'acme', holder: 'host-b' }),
    ).toMatchObject({ value: false, flagMetadata: { reason: 'lease_required' } })
  })

  it('the exit and page-hide hooks give the seats back (borrows kept), and do nothing until called', async () => {
    const manual = await start()
    const client = instance(server!.url, manual)
    held(await client.lease('seats', { subject: 'acme', holder: 'host-a' }))
    held(await client.lease('farm', { subject: 'acme' }))
    const listeners = new Map<string, () => void>()
    const killed: string[] = []
    const fakeProcess = {
      pid: 42,
      once: (signal: string, listener: () => void) => listeners.set(signal, listener),
      removeListener: (signal: string) => listeners.delete(signal),
      kill: (_pid: number, signal: string) => killed.push(signal),
    }
    const remove = releaseLeasesOnExit(client, { process: fakeProcess })
    expect([...listeners.keys()]).toEqual(['SIGINT', 'SIGTERM'])
    listeners.get('SIGTERM')!()
    await manual.idle()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(await leasesOf('acme')).toEqual([])
    // The signal is raised again with the hook removed: the process ends as it would have.
    expect(killed).toEqual(['SIGTERM'])
    expect(listeners.size).toBe(0)
    remove()
    const page = new Map<string, () => void>()
    const stop = releaseLeasesOnPageHide(client, {
      window: {
        addEventListener: (type, listener) => page.set(type, listener),
        removeEventListener: (type) => page.delete(type),
      },
    })
    held(await client.lease('seats', { subject: 'acme', holder: 'host-a' }))
    held(await client.lease('seats', { subject: 'acme', holder: 'laptop', borrowMs: 86_400_000 }))
    page.get('pagehide')!()
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect((await leasesOf('acme')).map((lease) => lease.holder)).toEqual(['laptop'])
    stop()
    expect(page.size).toBe(0)
  })
})
