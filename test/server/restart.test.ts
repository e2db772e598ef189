import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  createEntitlements,
  type EntitlementsClient,
  type EntitlementsClientOptions,
  metering,
} from '../../src/index.js'
import { createFileStorage } from '../../src/node/index.js'
import { SERVICE, startTestServer, type TestServer } from './helpers.js'

// The configuration the docs recommend, across real restarts: the reference server on loopback, keys from its
// remote JWK Set, file storage in a folder, a new client (a new process's worth of state) after each restart.
let server: TestServer | undefined
let dir: string
let clients: EntitlementsClient[]
const clock = {
  get now() {
    return Date.now()
  },
}

beforeEach(async () => {
  server = await startTestServer(clock)
  dir = await mkdtemp(join(tmpdir(), 'entitle-restart-'))
  clients = []
})
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close({ deadlineMs: 500 })))
  await server?.close()
  await rm(dir, { recursive: true, force: true })
})

function start(url: string, overrides: Partial<EntitlementsClientOptions> = {}): EntitlementsClient {
  const client = createEntitlements({
    metering,
    server: { url, apiKey: SERVICE, timeoutMs: 1000 },
    keys: new URL('/.well-known/jwks.json', url),
    jwks: { timeoutMs: 1000 },
    issuer: url,
    audience: 'acme-editor',
    storage: createFileStorage(dir),
    usage: { flushIntervalMs: 50, persistIntervalMs: 50 },
    ...overrides,
  })
  clients.push(client)
  return client
}

describe('a real restart', () => {
  it('keeps the license through a restart while the server and its key set are down', async () => {
    await server!.purchase('acme', 'team')
    const url = server!.url
    const first = start(url)
    expect(await first.check('export', { subject: 'acme' })).toMatchObject({ allowed: true, source: 'fresh' })
    await first.close()
    await server!.close()
    server = undefined
    // The restart: the license server and its JWK Set are unreachable.
    const second = start(url)
    const errors: string[] = []
    second.on('error', ({ error }) => errors.push(error.code))
    expect(await second.check('export', { subject: 'acme' })).toMatchObject({
      allowed: true,
      reason: 'granted',
      source: 'stored',
    })
    expect(await second.check('sso', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'not_in_plan',
    })
    await second.close()
    // Nothing was forgotten: a third start, still offline, answers the same.
    const third = start(url)
    expect((await third.check('export', { subject: 'acme' })).allowed).toBe(true)
    expect(errors).not.toContain('signature_invalid')
  })

  it('forgets a stored token that was tampered with, even while the key set is down', async () => {
    await server!.purchase('acme', 'business')
    const url = server!.url
    const first = start(url)
    expect((await first.check('sso', { subject: 'acme' })).allowed).toBe(true)
    await first.close()
    await server!.close()
    server = undefined
    const name = (await readdir(dir)).find((file) => file.startsWith('entitle%3Atoken%3Aacme'))!
    const stored = JSON.parse(await readFile(join(dir, name), 'utf8')) as { token: string }
    const [header, payload, signature] = stored.token.split('.')
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as { exp: number }
    claims.exp += 365 * 86_400
    stored.token = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`
    await writeFile(join(dir, name), JSON.stringify(stored))
    const second = start(url)
    expect(await second.check('sso', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'unavailable',
    })
    await second.close()
    expect(await readdir(dir)).not.toContain(name)
  })

  it('holds a metered cap across a restart, and the server re-issues a token that counts the usage', async () => {
    await server!.purchase('acme', 'starter') // api-calls: 5 a month
    const url = server!.url
    const first = start(url)
    for (let i = 0; i < 5; i++)
      expect((await first.consume('api-calls', { subject: 'acme' })).allowed).toBe(true)
    expect((await first.consume('api-calls', { subject: 'acme' })).allowed).toBe(false)
    await first.flush()
    await first.close()
    const total = async () =>
      (
        (await (await server!.admin('GET', '/customers/acme/usage')).json()) as {
          usage: Array<{ total: number }>
        }
      ).usage[0]?.total
    expect(await total()).toBe(5)
    const second = start(url)
    // Before anything is fetched: the stored token says 0 used, the journal remembers the 5 the server confirmed.
    expect(await second.consume('api-calls', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      used: 5,
    })
    // The server does not hand back the held token (same ETag) once usage moved past its snapshot.
    await second.refresh('acme')
    expect(second.entitlements('acme')?.usage.get('api-calls')?.used).toBe(5)
    expect((await second.consume('api-calls', { subject: 'acme' })).allowed).toBe(false)
    await second.flush()
    expect(await total()).toBe(5)
  })
})

describe('an air-gapped app', () => {
  it('imports the signed revocation list the reference server serves, and denies the revoked token', async () => {
    const { licenseKey } = await server!.purchase('acme', 'team')
    const activation = await server!.call('POST', '/v1/offline-licenses', undefined, {
      licenseKey,
      fingerprint: 'laptop-1',
    })
    expect(activation.status).toBeLessThan(300)
    const { token } = (await activation.json()) as { token: string }
    const url = server!.url
    const license = start(url, { server: undefined, token, usage: undefined })
    expect((await license.check('export', { device: 'laptop-1' })).allowed).toBe(true)
    // The laptop was stolen: the vendor frees its seat (an offline license holds it otherwise) and revokes it.
    const released = await server!.admin('POST', '/customers/acme/devices/laptop-1/release')
    expect(released.status).toBe(200)
    const list = await server!.call('GET', '/v1/revocations', licenseKey, undefined, {
      accept: 'application/revocation-list+jwt',
    })
    expect(list.headers.get('content-type')).toContain('application/revocation-list+jwt')
    expect(await license.importRevocations(await list.text())).toBeGreaterThan(0)
    expect(await license.check('export', { device: 'laptop-1' })).toMatchObject({
      allowed: false,
      reason: 'revoked',
    })
  })
})
