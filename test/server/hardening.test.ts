import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { startLicenseServer } from '../../examples/license-server/src/start.js'
import { createEntitlementVerifier, decide } from '../../src/index.js'
import { freePort } from '../fleet/redis-server.js'
import { ADMIN, problemOf, SECRET, SERVICE, startTestServer, type TestServer } from './helpers.js'

const MIN = 60_000
const DAY = 86_400_000
let clock: { now: number }
let server: TestServer
let dir: string

beforeAll(async () => {
  await promisify(execFile)(process.execPath, ['scripts/build-examples.mjs'])
})
beforeEach(async () => {
  clock = { now: Date.UTC(2026, 10, 25, 12, 0, 0) }
  server = await startTestServer(clock)
  dir = await mkdtemp(join(tmpdir(), 'entitle-hardening-'))
})
afterEach(async () => {
  await server.close()
  await rm(dir, { recursive: true, force: true })
})

const verifier = () =>
  createEntitlementVerifier({
    keys: new URL('/.well-known/jwks.json', server.url),
    issuer: server.url,
    audience: 'acme-editor',
    now: () => clock.now,
  })

describe('secrets', () => {
  it('refuses to start with a missing, empty or short order secret or admin key, saying how to make one', async () => {
    for (const [name, secrets] of [
      ['ENTITLE_ORDER_SECRET is empty', { orderSecret: '' }],
      ['ENTITLE_ORDER_SECRET is 8 bytes', { orderSecret: 'whs_test' }],
      ['ENTITLE_ADMIN_KEY is empty', { adminKey: '' }],
      ['ENTITLE_SERVICE_KEY is 3 bytes', { serviceKey: 'svc' }],
    ] as const) {
      const valid = { adminKey: ADMIN, orderSecret: SECRET, serviceKey: SERVICE }
      const start = startLicenseServer({ db: ':memory:', port: 0, ...valid, ...secrets })
      await expect(start).rejects.toThrow(name)
      await expect(start).rejects.toThrow('randomBytes(32)')
    }
  })

  it('an empty order secret in the environment stops the server: an empty HMAC key is no key', async () => {
    const run = promisify(execFile)
    const failed = await run(
      process.execPath,
      ['examples/.build/license-server.js', '--port', '0', '--data', dir],
      {
        env: { ...process.env, ENTITLE_ORDER_SECRET: '' },
        timeout: 20_000,
      },
    ).then(
      () => undefined,
      (error: { code: number; stderr: string }) => error,
    )
    expect(failed?.code).toBe(1)
    expect(failed?.stderr).toContain('ENTITLE_ORDER_SECRET is empty')
  })

  it('makes a secrets file once (mode 0600) and reuses it; the environment wins over it', async () => {
    const first = await startLicenseServer({ dataDir: dir, port: 0 })
    await first.close()
    expect(first.secretsFile).toMatchObject({ created: true, file: join(dir, 'secrets.env') })
    expect((await stat(join(dir, 'secrets.env'))).mode & 0o777).toBe(0o600)
    expect(await readFile(join(dir, 'secrets.env'), 'utf8')).toContain(
      `ENTITLE_ORDER_SECRET=${first.orderSecret}`,
    )
    const second = await startLicenseServer({ dataDir: dir, port: 0 })
    await second.close()
    expect(second.secretsFile?.created).toBe(false)
    expect([second.adminKey, second.orderSecret, second.serviceKey]).toEqual([
      first.adminKey,
      first.orderSecret,
      first.serviceKey,
    ])
    expect(second.database).toBe(join(dir, 'license.db'))
  })
})

describe('secrets from the environment', () => {
  it('makes no secrets file when the environment holds all three, and refuses a short one there', async () => {
    const { loadSecrets } = await import('../../examples/license-server/src/secrets.js')
    const env = { ENTITLE_ADMIN_KEY: ADMIN, ENTITLE_ORDER_SECRET: SECRET, ENTITLE_SERVICE_KEY: SERVICE }
    const loaded = loadSecrets(join(dir, 'env-only'), env)
    expect(loaded).toMatchObject({ created: false, orderSecret: SECRET, fromEnvironment: Object.keys(env) })
    await expect(stat(join(dir, 'env-only', 'secrets.env'))).rejects.toThrow()
    expect(() => loadSecrets(join(dir, 'env-only'), { ...env, ENTITLE_ADMIN_KEY: 'short' })).toThrow(
      'ENTITLE_ADMIN_KEY is 5 bytes',
    )
  })
})

describe('seats held by offline licenses', () => {
  it('an offline license keeps its seat until it expires: deactivate-and-reissue cannot multiply one seat', async () => {
    const { licenseKey } = await server.purchase('acme', 'team', { seats: 1 })
    const call = (method: string, path: string, fingerprint: string) =>
      server.call(method, path, undefined, { licenseKey, fingerprint })
    const valid: string[] = []
    for (let i = 1; i <= 5; i++) {
      const device = `laptop-000${i}`
      const offline = await call('POST', '/v1/offline-licenses', device)
      if (offline.status === 200) valid.push(((await offline.json()) as { token: string }).token)
      else expect((await problemOf(offline)).title).toBe('Device limit reached')
      const bye = await call('DELETE', '/v1/activations', device)
      if (i === 1) {
        expect(bye.status).toBe(409)
        expect(await problemOf(bye)).toMatchObject({
          title: 'Offline license outstanding',
          heldUntil: new Date(Date.UTC(2027, 10, 25, 12) + 14 * DAY).toISOString(),
        })
      }
    }
    expect(valid).toHaveLength(1)
    // When the offline license has expired, the seat is free again.
    clock.now = Date.UTC(2027, 10, 25, 12) + 15 * DAY
    expect((await call('DELETE', '/v1/activations', 'laptop-0001')).status).toBe(204)
  })

  it('an admin can release a seat an offline license holds (a machine known destroyed), revoking its tokens', async () => {
    const { licenseKey } = await server.purchase('acme', 'team', { seats: 1 })
    const offline = await server.call('POST', '/v1/offline-licenses', undefined, {
      licenseKey,
      fingerprint: 'laptop-0001',
    })
    const token = ((await offline.json()) as { token: string }).token
    const released = await server.admin('POST', '/customers/acme/devices/laptop-0001/release')
    expect(await released.json()).toEqual({ customerId: 'acme', fingerprint: 'laptop-0001' })
    const { revoked } = (await (await server.call('GET', '/v1/revocations', licenseKey)).json()) as {
      revoked: string[]
    }
    expect(revoked).toContain((await verifier().verify(token)).tokenId)
    expect(
      (await server.call('POST', '/v1/activations', undefined, { licenseKey, fingerprint: 'laptop-0002' }))
        .status,
    ).toBe(200)
    expect((await server.admin('POST', '/customers/acme/devices/laptop-0001/release')).status).toBe(404)
  })
})

describe('key rotation', () => {
  it('keeps a key in the JWK Set while a year-long offline license it signed lives, through two rotations', async () => {
    const { licenseKey } = await server.purchase('acme', 'team')
    const offline = await server.call('POST', '/v1/offline-licenses', undefined, {
      licenseKey,
      fingerprint: 'airgap-0001',
    })
    const { token } = (await offline.json()) as { token: string }
    const firstKid = (await verifier().verify(token)).keyId
    for (let rotation = 0; rotation < 2; rotation++) {
      await server.admin('POST', '/keys/rotate')
      clock.now += 30 * DAY
      // Something is signed by each new key once it is active.
      expect((await server.tokenOf('acme')).length).toBeGreaterThan(0)
    }
    const kids = async () =>
      (
        (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as {
          keys: Array<{ kid: string }>
        }
      ).keys.map((key) => key.kid)
    expect(await kids()).toContain(firstKid)
    // A verifier that never saw the key before (a fresh install) still verifies the offline license.
    const license = await verifier().verify(token)
    expect(decide(license, 'export', { device: 'airgap-0001' }, clock.now).allowed).toBe(true)
    // After it expired (the term's end plus 14 days' grace) the key goes.
    clock.now = license.expiresAt + 10 * MIN
    expect(await kids()).not.toContain(firstKid)
  })

  it('an immediate rotation signs with the new key at once', async () => {
    await server.purchase('acme', 'team')
    const rotated = await (await server.admin('POST', '/keys/rotate', { immediate: true })).json()
    expect(rotated.signsFrom).toBe(new Date(clock.now).toISOString())
    const token = await server.tokenOf('acme')
    expect((await verifier().verify(token)).keyId).toBe(rotated.kid)
  })
})

/** Reads an event stream until `pattern` shows up (or the stream ends); returns what was read. */
async function readUntil(response: Response, pattern: RegExp): Promise<{ text: string; ended: boolean }> {
  const reader = response.body!.getReader()
  let text = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return { text, ended: true }
    text += new TextDecoder().decode(value)
    if (pattern.test(text)) {
      await reader.cancel()
      return { text, ended: false }
    }
  }
}

describe('event streams', () => {
  it('replays a reconnecting customer’s own events however busy a neighbour was', async () => {
    const acme = await server.purchase('acme', 'team')
    await server.purchase('globex', 'team')
    const { text } = await readUntil(
      await fetch(`${server.url}/v1/events`, { headers: { authorization: `Bearer ${SERVICE}` } }),
      /: connected/,
    )
    expect(text).toContain(': connected')
    // acme's change, then 1 500 of globex's: a replay that took 1 000 events before filtering missed acme's.
    await server.order({ orderId: 'acme-up', type: 'upgrade', customer: { id: 'acme' }, sku: 'business' })
    const { events } = server.server.services
    for (let i = 0; i < 1500; i++) events.transaction(() => events.record('entitlements', 'globex'))
    const replay = await fetch(`${server.url}/v1/events`, {
      headers: { authorization: `Bearer ${acme.apiKey}`, 'last-event-id': '1' },
    })
    const got = await readUntil(replay, /data: \{"subject":"acme"\}/)
    expect(got.text).toMatch(/event: entitlements\ndata: \{"subject":"acme"\}/)
    expect(got.text).not.toContain('globex')
  })

  it('ends a stream opened with credentials that were then replaced', async () => {
    const acme = await server.purchase('acme', 'team')
    const stream = await fetch(`${server.url}/v1/events`, {
      headers: { authorization: `Bearer ${acme.apiKey}` },
    })
    const reading = readUntil(stream, /never/)
    await new Promise((resolve) => setTimeout(resolve, 50))
    await server.admin('POST', '/customers/acme/credentials')
    const { ended } = await reading
    expect(ended).toBe(true)
    const again = await fetch(`${server.url}/v1/events`, {
      headers: { authorization: `Bearer ${acme.apiKey}` },
    })
    expect(again.status).toBe(401)
  })

  it('holds at most 16 streams per customer credential: the next is a 429 problem with Retry-After', async () => {
    const acme = await server.purchase('acme', 'team')
    const controllers: AbortController[] = []
    const open = () => {
      const controller = new AbortController()
      controllers.push(controller)
      return fetch(`${server.url}/v1/events`, {
        headers: { authorization: `Bearer ${acme.apiKey}` },
        signal: controller.signal,
      })
    }
    // Held, not dropped: undici cancels the body of a response that is garbage-collected, which would free a slot.
    const held: Response[] = []
    for (let i = 0; i < 16; i++) held.push(await open())
    expect(held.map((response) => response.status)).toEqual(Array(16).fill(200))
    const refused = await open()
    expect(refused.status).toBe(429)
    expect(refused.headers.get('retry-after')).toBe('30')
    expect((await problemOf(refused)).title).toBe('Too many event streams')
    expect(held).toHaveLength(16)
    // Another credential is not affected.
    const controller = new AbortController()
    controllers.push(controller)
    const other = await fetch(`${server.url}/v1/events`, {
      headers: { authorization: `Bearer ${SERVICE}` },
      signal: controller.signal,
    })
    expect(other.status).toBe(200)
    for (const each of controllers) each.abort()
  })
})

/** Sends `text` on a raw socket and reads the whole answer: what a client that writes its own requests gets. */
function rawRequest(url: string, text: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(new URL(url).port), '127.0.0.1', () => socket.write(text))
    let answer = ''
    socket.on('data', (chunk) => {
      answer += chunk
    })
    socket.on('error', reject)
    socket.on('close', () => {
      const [head = '', body = ''] = answer.split('\r\n\r\n')
      const type = /content-type: ([^\r\n]+)/i.exec(head)?.[1] ?? ''
      resolve({
        status: Number(head.split(' ')[1]),
        type,
        body: body.replace(/^[0-9a-f]+\r\n|\r\n0\r\n$/g, ''),
      })
    })
  })
}

describe('every answer is problem+json', () => {
  it('headers over 16 KiB are a 431 problem, in one header or in many', async () => {
    const many = Array.from({ length: 23 }, (_, i) => `x-pad-${i}: ${'x'.repeat(1000)}\r\n`).join('')
    for (const headers of [`x-pad: ${'x'.repeat(23_000)}\r\n`, many]) {
      const answer = await rawRequest(
        server.url,
        `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}Connection: close\r\n\r\n`,
      )
      expect(answer).toMatchObject({ status: 431, type: 'application/problem+json' })
      expect(JSON.parse(answer.body)).toMatchObject({ status: 431, title: 'Headers too large' })
    }
  })

  it('more than 1 000 headers (Node dropped those past 1 000, Host among them) get an answer, not a bare 400', async () => {
    const many = Array.from({ length: 1100 }, (_, i) => `x-h${i}: a\r\n`).join('')
    const answer = await rawRequest(
      server.url,
      `GET /healthz HTTP/1.1\r\n${many}Host: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    )
    expect(answer.status).toBe(200)
  })

  it('a request with no Host is a 400 problem', async () => {
    const answer = await rawRequest(server.url, 'GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n')
    expect(answer).toMatchObject({ status: 400, type: 'application/problem+json' })
    expect(JSON.parse(answer.body)).toMatchObject({ status: 400, title: 'Bad request' })
  })
})

describe('trials', () => {
  it('one trial per plan per customer, remembered across a cancellation; another plan has its own', async () => {
    const trial = (orderId: string, sku: string) =>
      server.order({ orderId, type: 'purchase', customer: { id: 'globex' }, sku, trialDays: 30 })
    expect((await trial('t-1', 'team')).status).toBe(201)
    expect(
      (await server.order({ orderId: 'c-1', type: 'cancellation', customer: { id: 'globex' } })).status,
    ).toBe(200)
    // Bought again after the cancellation: no fresh 30 days.
    const again = await trial('t-2', 'team')
    expect(again.status).toBe(409)
    expect(await problemOf(again)).toMatchObject({ title: 'Trial already taken' })
    // A trial of another plan is its own; a paid purchase of the same plan is always possible.
    expect((await trial('t-3', 'business')).status).toBe(201)
    await server.order({ orderId: 'c-2', type: 'cancellation', customer: { id: 'globex' } })
    expect(
      (await server.order({ orderId: 'p-1', type: 'purchase', customer: { id: 'globex' }, sku: 'team' }))
        .status,
    ).toBe(201)
  })

  it('a purchase can start a trial (trial end in the token); a later purchase converts it', async () => {
    const trial = await server.order({
      orderId: 'trial-1',
      type: 'purchase',
      customer: { id: 'acme' },
      sku: 'team',
      trialDays: 14,
    })
    expect(trial.status).toBe(201)
    expect((await trial.json()).license.trialEnd).toBe(new Date(clock.now + 14 * DAY).toISOString())
    const during = await verifier().verify(await server.tokenOf('acme'))
    expect(decide(during, 'export', {}, clock.now)).toMatchObject({ allowed: true, reason: 'trial' })
    clock.now += 15 * DAY
    const after = await verifier().verify(await server.tokenOf('acme'))
    expect(decide(after, 'export', {}, clock.now)).toMatchObject({ allowed: false, reason: 'trial_ended' })
    const bought = await server.order({
      orderId: 'buy-1',
      type: 'purchase',
      customer: { id: 'acme' },
      sku: 'team',
    })
    expect(bought.status).toBe(200)
    const answer = await bought.json()
    expect(answer.credentials).toBeUndefined()
    expect(answer.license.trialEnd).toBeUndefined()
    const paid = await verifier().verify(await server.tokenOf('acme'))
    expect(decide(paid, 'export', {}, clock.now)).toMatchObject({ allowed: true, reason: 'granted' })
    const renewTrial = await server.order({
      orderId: 'trial-2',
      type: 'renewal',
      customer: { id: 'acme' },
      trialDays: 7,
    })
    expect((await problemOf(renewTrial)).title).toBe('Trial on a purchase only')
  })
})

describe('npm run order', () => {
  it('signs and places an order with the secret from the data folder, and says what went wrong', async () => {
    const running = await startLicenseServer({ dataDir: dir, port: 0 })
    try {
      const run = (...args: string[]) =>
        promisify(execFile)(
          process.execPath,
          ['examples/.build/order.js', '--server', running.url, '--data', dir, ...args],
          {
            env: { ...process.env, ENTITLE_ORDER_SECRET: undefined },
          },
        ).then(
          ({ stdout }) => ({ code: 0, out: stdout }),
          (error: { code: number; stderr: string }) => ({ code: error.code, out: error.stderr }),
        )
      const bought = await run('--customer', 'acme', '--sku', 'team', '--seats', '3')
      expect(bought.code).toBe(0)
      expect(JSON.parse(bought.out)).toMatchObject({
        type: 'purchase',
        license: { customerId: 'acme', sku: 'team', seats: 3 },
        credentials: { apiKey: expect.stringMatching(/^ck_/) },
      })
      const unknown = await run('--customer', 'acme', '--type', 'upgrade', '--sku', 'platinum')
      expect(unknown.code).toBe(1)
      expect(JSON.parse(unknown.out)).toMatchObject({
        status: 422,
        title: 'Unknown SKU',
        detail: 'the catalog has no SKU platinum; it sells starter, team, business',
      })
      expect((await run('--sku', 'team')).code).toBe(2)
      // No server there: the URL it tried, and how to start one.
      const port = await freePort()
      const nobody = await run('--customer', 'acme', '--sku', 'team', '--server', `http://127.0.0.1:${port}`)
      expect(nobody).toEqual({
        code: 3,
        out: `no license server answered at http://127.0.0.1:${port} (ECONNREFUSED): start one with npm run server, or pass --server URL\n`,
      })
    } finally {
      await running.close()
    }
  })
})

describe('npm run server', () => {
  /** Starts the built server command; resolves with what it printed once it listens or ends. */
  const serve = (args: string[]) =>
    new Promise<{ code: number | null; out: string; err: string; stop: () => void }>((resolve) => {
      const child = execFile(process.execPath, ['examples/.build/license-server.js', ...args])
      let out = ''
      let err = ''
      const stop = () => child.kill()
      child.stdout!.on('data', (chunk) => {
        out += chunk
        if (out.includes('license server on')) resolve({ code: null, out, err, stop })
      })
      child.stderr!.on('data', (chunk) => {
        err += chunk
      })
      child.on('exit', (code) => resolve({ code, out, err, stop }))
    })

  it('--data for a folder that does not exist yet makes it, as the default folder is made', async () => {
    const data = join(dir, 'not', 'there', 'yet')
    const started = await serve(['--port', String(await freePort()), '--data', data])
    started.stop()
    expect(started).toMatchObject({ code: null, err: '' })
    expect((await stat(join(data, 'license.db'))).isFile()).toBe(true)
  })

  it('a port that is taken says so, and how to pick another', async () => {
    const running = await startLicenseServer({ dataDir: dir, port: 0 })
    try {
      const port = new URL(running.url).port
      const second = await serve(['--port', port, '--data', dir])
      expect(second.code).toBe(1)
      expect(second.err).toBe(
        `port ${port} on 127.0.0.1 is taken (another license server?): stop it, or pick another with --port (npm run server -- --port 8788)\n`,
      )
    } finally {
      await running.close()
    }
  })
})
