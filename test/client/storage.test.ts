import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setupServer } from 'msw/node'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createLocalStorage } from '../../src/browser/index.js'
import { createEntitlements, type EntitlementStorage, type EntitlementsClient } from '../../src/index.js'
import { createFileStorage, tokenFromFile } from '../../src/node/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { fakeLicenseServer, manualPlatform, SERVER } from './harness.js'

const msw = setupServer()
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
afterAll(() => msw.close())
let clock: ReturnType<typeof manualPlatform>

/** A multi-tenant client of the fake license server, on the test clock, with the given storage. */
function serverClient(server: Awaited<ReturnType<typeof fakeLicenseServer>>, storage: EntitlementStorage) {
  return createEntitlements({
    server: { url: SERVER, revocationIntervalMs: 0 },
    keys: server.issuer.jwks,
    issuer: SERVER,
    audience: 'app',
    platform: clock.platform,
    storage,
  })
}
beforeEach(() => {
  msw.resetHandlers()
  clock = manualPlatform()
})

describe('createFileStorage', () => {
  it('stores, reads and forgets values, one private file per key', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'entitle-store-')), 'nested')
    const storage = createFileStorage(dir)
    expect(await storage.get('entitle:token:acme')).toBeUndefined()
    await storage.set('entitle:token:acme', '{"a":1}')
    expect(await storage.get('entitle:token:acme')).toBe('{"a":1}')
    await storage.set('entitle:token:acme', '{"a":2}')
    expect(await storage.get('entitle:token:acme')).toBe('{"a":2}')
    expect(readdirSync(dir)).toEqual(['entitle%3Atoken%3Aacme.json'])
    expect(statSync(join(dir, readdirSync(dir)[0]!)).mode & 0o777).toBe(0o600)
    await storage.delete('entitle:token:acme')
    expect(await storage.get('entitle:token:acme')).toBeUndefined()
    await storage.delete('never-stored')
  })

  it('keeps every key inside its folder, whatever the key says', async () => {
    const root = mkdtempSync(join(tmpdir(), 'entitle-store-'))
    const storage = createFileStorage(join(root, 'store'))
    for (const key of ['../../escape', '/etc/passwd', '..', 'a/b\\c']) await storage.set(key, 'x')
    expect(readdirSync(root)).toEqual(['store'])
    expect(readdirSync(join(root, 'store'))).toHaveLength(4)
  })

  it('leaves no temporary files behind, even when many writes race', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'entitle-store-'))
    const storage = createFileStorage(dir)
    await Promise.all(Array.from({ length: 50 }, (_, i) => storage.set('k', String(i))))
    expect(readdirSync(dir)).toEqual(['k.json'])
    // Whichever write landed last, it landed whole: one of the values written, never a mix or a torn file.
    expect(Array.from({ length: 50 }, (_, i) => String(i))).toContain(await storage.get('k'))
  })

  it('makes its folder again when it was removed while running, and leaves no temporary file when a write fails', async () => {
    const root = mkdtempSync(join(tmpdir(), 'entitle-store-'))
    const dir = join(root, 'store')
    const storage = createFileStorage(dir)
    await storage.set('k', 'first')
    // A cleaner (tmpfiles, a user) removes the folder under a running app.
    rmSync(dir, { recursive: true })
    await storage.set('k', 'second')
    expect(await storage.get('k')).toBe('second')
    // A write that cannot land (the key's file is a folder) fails, and takes its temporary file with it.
    mkdirSync(join(dir, 'blocked.json'))
    await expect(storage.set('blocked', 'x')).rejects.toThrow()
    expect(readdirSync(dir).sort()).toEqual(['blocked.json', 'k.json'])
  })

  it('lets a client restart from disk with the network down', async () => {
    const server = await fakeLicenseServer(msw, clock)
    server.sell('acme', { plan: { id: 'team' }, features: { export: true } })
    const dir = mkdtempSync(join(tmpdir(), 'entitle-store-'))
    const make = () => serverClient(server, createFileStorage(dir))
    const first = make()
    await first.check('export', { subject: 'acme' })
    await clock.idle()
    await first.close()
    server.state.fail = 'network'
    const second = make()
    expect(await second.check('export', { subject: 'acme' })).toMatchObject({ allowed: true, plan: 'team' })
    await second.close()
  })
})

describe('tokenFromFile', () => {
  it('reads the license file again at each refresh, so a replaced file takes effect', async () => {
    const issuer = await createTestIssuer({ now: () => clock.now })
    const dir = mkdtempSync(join(tmpdir(), 'entitle-license-'))
    const path = join(dir, 'license.jwt')
    writeFileSync(path, `${await issuer.issue({ plan: { id: 'basic' }, features: { export: true } })}\n`)
    const client: EntitlementsClient = createEntitlements({
      token: tokenFromFile(path),
      keys: issuer.jwks,
      issuer: issuer.issuer,
      audience: issuer.audience,
      platform: clock.platform,
    })
    expect((await client.check('export')).plan).toBe('basic')
    writeFileSync(path, await issuer.issue({ plan: { id: 'pro' }, features: { export: true } }))
    await clock.advance(50 * 60_000)
    expect((await client.check('export')).plan).toBe('pro')
    await client.close()
  })
})

describe('storage writes', () => {
  it('land in order, so a slow older write never overwrites a newer one', async () => {
    const server = await fakeLicenseServer(msw, clock)
    server.sell('acme', { plan: { id: 'team' }, features: { export: true } })
    const values = new Map<string, string>()
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    let first = true
    const slowFirstWrite = {
      get: (key: string) => values.get(key),
      delete: (key: string) => {
        values.delete(key)
      },
      async set(key: string, value: string) {
        if (key.startsWith('entitle:token:') && first) {
          first = false
          await gate
        }
        values.set(key, value)
      },
    }
    const client = serverClient(server, slowFirstWrite)
    await client.check('export', { subject: 'acme' })
    server.sell('acme', { plan: { id: 'business' }, features: { export: true } })
    await client.refresh('acme')
    release()
    await client.close()
    const stored = JSON.parse(values.get('entitle:token:acme')!) as { token: string }
    const payload = JSON.parse(Buffer.from(stored.token.split('.')[1]!, 'base64url').toString())
    expect(payload.ent.plan.id).toBe('business')
  })
})

describe('a failing token source', () => {
  it('reports token_unavailable when the license file is gone, and keeps the token it has', async () => {
    const issuer = await createTestIssuer({ now: () => clock.now })
    const dir = mkdtempSync(join(tmpdir(), 'entitle-license-'))
    const path = join(dir, 'license.jwt')
    writeFileSync(path, await issuer.issue({ plan: { id: 'basic' }, features: { export: true } }))
    const client = createEntitlements({
      token: tokenFromFile(path),
      ...issuer.verifyOptions,
      platform: clock.platform,
    })
    const codes: string[] = []
    client.on('error', (event) => codes.push(event.error.code))
    expect((await client.check('export')).allowed).toBe(true)
    rmSync(path)
    await clock.advance(50 * 60_000)
    // The refresh at ~45 minutes fails, then its backoff retries do too: each reported, none with another code.
    expect(codes.length).toBeGreaterThan(1)
    expect(new Set(codes)).toEqual(new Set(['token_unavailable']))
    expect(await client.check('export')).toMatchObject({ allowed: true, source: 'cache' })
    await client.close()
  })
})

describe('createLocalStorage', () => {
  const webStorage = (quota = Number.POSITIVE_INFINITY) => {
    const items = new Map<string, string>()
    return {
      items,
      getItem: (key: string) => items.get(key) ?? null,
      setItem: (key: string, value: string) => {
        if (value.length > quota) throw new DOMException('quota exceeded', 'QuotaExceededError')
        items.set(key, value)
      },
      removeItem: (key: string) => {
        items.delete(key)
      },
    }
  }

  it('keeps values under a prefix', async () => {
    const backing = webStorage()
    const storage = createLocalStorage('app1/', backing)
    await storage.set('k', 'v')
    expect([...backing.items]).toEqual([['app1/k', 'v']])
    expect(await storage.get('k')).toBe('v')
    expect(await storage.get('missing')).toBeUndefined()
    await storage.delete('k')
    expect(backing.items.size).toBe(0)
  })

  it('reports a full quota through the client and goes on checking', async () => {
    const server = await fakeLicenseServer(msw, clock)
    server.sell('acme', { plan: { id: 'team' }, features: { export: true } })
    const client = serverClient(server, createLocalStorage(undefined, webStorage(10)))
    const codes: string[] = []
    client.on('error', (event) => codes.push(event.error.code))
    expect((await client.check('export', { subject: 'acme' })).allowed).toBe(true)
    expect(codes).toContain('storage_failed')
    await client.close()
  })

  it('uses the global localStorage when none is given, and says so when there is none', () => {
    expect(() => createLocalStorage().get('k')).toThrow(/no localStorage/)
  })
})
