import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createEntitlements, type EntitlementsClient, metering } from '../../src/index.js'
import { createFileStorage } from '../../src/node/index.js'
import { SERVICE, startTestServer, type TestServer } from './helpers.js'

// The reference server sells a CI plan per repository: 10 builds a month per repository within 20 for the account.
// Its tokens carry the per-resource grant (format v2) with each repository's usage; other customers keep v1.

let server: TestServer | undefined
const clients: EntitlementsClient[] = []
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close({ deadlineMs: 500 })))
  clients.length = 0
  await server?.close()
  server = undefined
})

function ciCatalog(): string {
  const catalog = JSON.parse(readFileSync('examples/license-server/catalog.json', 'utf8'))
  catalog.plans.ci = {
    name: 'CI',
    tier: 2,
    features: {
      builds: { cap: { limit: 20, period: 'month' }, per: { kind: 'repository', cap: { limit: 10 } } },
    },
  }
  const file = join(mkdtempSync(join(tmpdir(), 'entitle-ci-catalog-')), 'catalog.json')
  writeFileSync(file, JSON.stringify(catalog))
  return file
}

function instance(url: string, clock: { now: number }) {
  const made = createEntitlements({
    metering,
    server: { url, apiKey: SERVICE, timeoutMs: 1000 },
    keys: new URL('/.well-known/jwks.json', url),
    issuer: url,
    audience: 'acme-editor',
    storage: createFileStorage(mkdtempSync(join(tmpdir(), 'entitle-ci-instance-'))),
    usage: { flushIntervalMs: 60_000 },
    platform: { now: () => clock.now },
  })
  clients.push(made)
  return made
}

const version = (token: string) =>
  (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { ent: { v: number } }).ent.v

describe('per-resource grants on the reference server', () => {
  it('counts usage per repository, carries it in v2 tokens, and a fresh instance denies at the repository', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    server = await startTestServer(clock, 600, { catalog: ciCatalog() })
    await server.purchase('acme', 'ci')
    await server.purchase('globex', 'team')
    // A customer who bought nothing per resource keeps v1 tokens, which every SDK reads.
    expect(version(await server.tokenOf('globex'))).toBe(1)
    expect(version(await server.tokenOf('acme'))).toBe(2)
    const first = instance(server.url, clock)
    await first.load('acme')
    for (let i = 0; i < 7; i++)
      expect((await first.consume('builds', { subject: 'acme', resource: 'repository:api' })).allowed).toBe(
        true,
      )
    first.record('builds', 3, { subject: 'acme', resource: 'repository:web' })
    await first.flush()
    const report = (await (await server.admin('GET', '/customers/acme/usage')).json()) as {
      usage: Array<{ metric: string; total: number }>
      resources: Array<{ metric: string; resource: string; total: number; windowEnd: string }>
    }
    expect(report.usage.find((row) => row.metric === 'builds')?.total).toBe(10)
    expect(report.resources).toEqual([
      { metric: 'builds', windowEnd: '2026-12-20T12:00:00.000Z', resource: 'repository:api', total: 7 },
      { metric: 'builds', windowEnd: '2026-12-20T12:00:00.000Z', resource: 'repository:web', total: 3 },
    ])
    // A fresh instance knows only what its token carries: the server's counts per repository.
    const fresh = instance(server.url, clock)
    await fresh.load('acme')
    expect(
      fresh.entitlements('acme')?.features.get('builds')?.per?.resources.get('repository:api'),
    ).toMatchObject({
      used: 7,
    })
    expect(
      await fresh.check('builds', { subject: 'acme', resource: 'repository:api', amount: 4 }),
    ).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      resource: { deniedBy: 'resource', own: { used: 7, limit: 10 }, account: { used: 10, limit: 20 } },
    })
    expect(
      await fresh.check('builds', { subject: 'acme', resource: 'repository:new', amount: 10 }),
    ).toMatchObject({
      allowed: true,
      resource: { own: { used: 0 }, account: { used: 10 } },
    })
    expect((await fresh.check('builds', { subject: 'acme' })).reason).toBe('resource_required')
  })

  it('sells an add-on for one workspace: on there, off elsewhere with the add-on as the way to get it', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    server = await startTestServer(clock, 600, { catalog: ciCatalog() })
    await server.purchase('acme', 'team', {
      addons: ['ai-assistant@workspace:ws-9', 'ai-assistant@workspace:ws-3'],
    })
    const refused = await server.order({
      orderId: 'o-bad-addon',
      type: 'purchase',
      customer: { id: 'globex' },
      sku: 'team',
      addons: ['ai-assistant@ws-9'],
    })
    expect(refused.status).toBe(422)
    const token = await server.tokenOf('acme')
    expect(version(token)).toBe(2)
    const client = instance(server.url, clock)
    await client.load('acme')
    expect(client.entitlements('acme')?.addons).toEqual([])
    for (const ws of ['ws-9', 'ws-3'])
      expect(
        await client.check('ai-assistant', { subject: 'acme', resource: `workspace:${ws}` }),
      ).toMatchObject({
        allowed: true,
      })
    expect(await client.check('ai-assistant', { subject: 'acme', resource: 'workspace:ws-1' })).toMatchObject(
      {
        allowed: false,
        reason: 'not_in_plan',
        upgrade: { addon: 'ai-assistant' },
        resource: { deniedBy: 'resource' },
      },
    )
    // The account-wide features are as the plan sells them.
    expect((await client.check('export', { subject: 'acme' })).allowed).toBe(true)
  })

  it('refuses a catalog that sells a per-resource cap without the account cap whose window it counts in', async () => {
    const catalog = JSON.parse(readFileSync(ciCatalog(), 'utf8'))
    catalog.plans.ci.features.builds = { per: { kind: 'repository', cap: { limit: 10 } } }
    const file = join(mkdtempSync(join(tmpdir(), 'entitle-ci-bad-')), 'catalog.json')
    writeFileSync(file, JSON.stringify(catalog))
    await expect(startTestServer({ now: Date.now() }, 600, { catalog: file })).rejects.toThrow(
      /per\.cap counts in the window of the feature's cap/,
    )
  })

  it('per-resource totals equal what was recorded, across a server outage, an app restart and a server restart', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    const dir = mkdtempSync(join(tmpdir(), 'entitle-ci-outage-'))
    const catalog = ciCatalog()
    server = await startTestServer(clock, 600, { catalog, db: join(dir, 'license.db') })
    await server.purchase('acme', 'ci')
    const url = server.url
    const port = Number(new URL(url).port)
    const state = mkdtempSync(join(tmpdir(), 'entitle-ci-state-'))
    const app = createEntitlements({
      metering,
      server: { url, apiKey: SERVICE, timeoutMs: 500 },
      keys: new URL('/.well-known/jwks.json', url),
      issuer: url,
      audience: 'acme-editor',
      storage: createFileStorage(state),
      usage: { flushIntervalMs: 60_000 },
      platform: { now: () => clock.now },
    })
    await app.load('acme')
    // Online: 3 on api, 2 on web, sent.
    for (let i = 0; i < 3; i++) await app.consume('builds', { subject: 'acme', resource: 'repository:api' })
    app.record('builds', 2, { subject: 'acme', resource: 'repository:web' })
    await app.flush()
    // The server goes down; the app goes on counting per repository, then restarts (a deploy) with its storage.
    await server.close()
    server = undefined
    for (let i = 0; i < 4; i++)
      expect((await app.consume('builds', { subject: 'acme', resource: 'repository:api' })).allowed).toBe(
        true,
      )
    app.record('builds', 1, { subject: 'acme', resource: 'repository:docs' })
    await app.flush()
    await app.close({ deadlineMs: 200 })
    const restarted = createEntitlements({
      metering,
      server: { url, apiKey: SERVICE, timeoutMs: 500 },
      keys: new URL('/.well-known/jwks.json', url),
      issuer: url,
      audience: 'acme-editor',
      storage: createFileStorage(state),
      usage: { flushIntervalMs: 60_000 },
      platform: { now: () => clock.now },
    })
    clients.push(restarted)
    // Still offline after the restart: the stored token and the journal carry on; api has 7 of its 10.
    expect(restarted.checkSync('builds', { subject: 'acme', resource: 'repository:api' }).reason).toBe(
      'not_loaded',
    )
    await restarted.load('acme')
    expect(await restarted.check('builds', { subject: 'acme', resource: 'repository:api' })).toMatchObject({
      allowed: true,
      used: 7,
    })
    restarted.record('builds', 1, { subject: 'acme', resource: 'repository:web' })
    // The server is back, on the same port and database (its own restart): everything arrives, each line once.
    server = await startTestServer(clock, 600, { catalog, db: join(dir, 'license.db'), port })
    await restarted.flush()
    await restarted.flush()
    const report = (await (await server.admin('GET', '/customers/acme/usage')).json()) as {
      usage: Array<{ metric: string; total: number }>
      resources: Array<{ resource: string; total: number }>
    }
    expect(report.usage.find((row) => row.metric === 'builds')?.total).toBe(11)
    expect(Object.fromEntries(report.resources.map((row) => [row.resource, row.total]))).toEqual({
      'repository:api': 7,
      'repository:web': 3,
      'repository:docs': 1,
    })
    // A token issued now carries those counts: a fresh instance sees api at 7 of 10.
    const fresh = instance(server.url, clock)
    await fresh.load('acme')
    expect(fresh.checkSync('builds', { subject: 'acme', resource: 'repository:api' })).toMatchObject({
      used: 7,
    })
  })
})
