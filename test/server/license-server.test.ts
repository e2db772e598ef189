import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { openDatabase } from '../../examples/license-server/src/db.js'
import { createEntitlementVerifier, decide, type Entitlements } from '../../src/index.js'
import { ADMIN, problemOf, SERVICE, startTestServer, type TestServer } from './helpers.js'

const MIN = 60_000
let clock: { now: number }
let server: TestServer

beforeEach(async () => {
  clock = { now: Date.UTC(2026, 10, 25, 12, 0, 0) }
  server = await startTestServer(clock)
})
afterEach(async () => {
  await server.close()
})

function verifier() {
  return createEntitlementVerifier({
    keys: new URL('/.well-known/jwks.json', server.url),
    issuer: server.url,
    audience: 'acme-editor',
    now: () => clock.now,
  })
}

async function tokenOf(customer: string, key = SERVICE): Promise<Entitlements> {
  const response = await server.call('GET', `/v1/entitlements/${customer}`, key)
  expect(response.status).toBe(200)
  return verifier().verify(await response.text())
}

const customers = async () =>
  ((await (await server.admin('GET', '/customers')).json()) as { customers: unknown[] }).customers

describe('orders: signed, validated, idempotent', () => {
  it('a purchase creates the customer and license and hands out credentials once', async () => {
    const purchase = {
      orderId: 'o-1',
      type: 'purchase',
      customer: { id: 'acme', name: 'Acme Inc.' },
      sku: 'team',
      tier: 2,
      seats: 5,
      termMonths: 12,
    }
    const first = await server.order(purchase)
    expect(first.status).toBe(201)
    const answer = await first.json()
    expect(answer).toMatchObject({
      license: {
        customerId: 'acme',
        sku: 'team',
        seats: 5,
        status: 'active',
        termEnd: '2027-11-25T12:00:00.000Z',
      },
      credentials: { apiKey: expect.stringMatching(/^ck_/), licenseKey: expect.stringMatching(/^lk_/) },
    })
    // The CRM retries a second later, signing again: the same answer, no second license, no credentials.
    clock.now += 1000
    const again = await server.order(purchase)
    expect(again.status).toBe(201)
    const replayed = await again.json()
    expect(replayed).toMatchObject({ replayed: true, license: { sku: 'team' } })
    expect(replayed.credentials).toBeUndefined()
    expect(await customers()).toHaveLength(1)
  })

  it('refuses bad input with problem+json and changes nothing', async () => {
    const valid = { orderId: 'o-2', type: 'purchase', customer: { id: 'acme' }, sku: 'team' }
    const cases: Array<[string, () => Promise<Response>, number, string]> = [
      ['bad signature', () => server.order(valid, { secret: 'wrong' }), 401, 'Bad signature'],
      [
        'no signature',
        () => fetch(`${server.url}/v1/orders`, { method: 'POST', body: JSON.stringify(valid) }),
        401,
        'Signature required',
      ],
      ['stale signature', () => server.order(valid, { at: clock.now - 10 * MIN }), 401, 'Stale signature'],
      ['future signature', () => server.order(valid, { at: clock.now + 10 * MIN }), 401, 'Stale signature'],
      ['malformed JSON', () => server.order(undefined, { raw: '{"orderId": ' }), 400, 'Malformed JSON'],
      ['wrong types', () => server.order({ ...valid, seats: 'five' }), 422, 'Invalid request'],
      ['unknown field', () => server.order({ ...valid, price: 0 }), 422, 'Invalid request'],
      ['unknown SKU', () => server.order({ ...valid, sku: 'platinum' }), 422, 'Unknown SKU'],
      ['tier mismatch', () => server.order({ ...valid, tier: 9 }), 422, 'Tier mismatch'],
      ['unknown add-on', () => server.order({ ...valid, addons: ['teleport'] }), 422, 'Unknown add-on'],
      [
        'huge body',
        () => server.order(undefined, { raw: `{"orderId":"${'x'.repeat(100_000)}"}` }),
        413,
        'Body too large',
      ],
      [
        'an id with markup',
        () => server.order({ ...valid, customer: { id: '<script>' } }),
        422,
        'Invalid request',
      ],
    ]
    for (const [name, send, status, title] of cases) {
      const response = await send()
      expect({ name, status: response.status }).toEqual({ name, status })
      expect({ name, title: (await problemOf(response)).title }).toEqual({ name, title })
    }
    expect(await customers()).toEqual([])
  })

  it('ends a term by calendar months, the day clamped and then restored (Jan 31 + 2 = Mar 31)', async () => {
    clock.now = Date.UTC(2026, 0, 31, 9, 0, 0)
    const answer = await (
      await server.order({
        orderId: 'o-jan',
        type: 'purchase',
        customer: { id: 'acme' },
        sku: 'team',
        termMonths: 2,
      })
    ).json()
    expect(answer.license.termEnd).toBe('2026-03-31T09:00:00.000Z')
  })

  it('refuses the exact same signed request twice (a replay)', async () => {
    const raw = JSON.stringify({ orderId: 'o-3', type: 'purchase', customer: { id: 'acme' }, sku: 'team' })
    expect((await server.order(undefined, { raw })).status).toBe(201)
    const replay = await server.order(undefined, { raw })
    expect(replay.status).toBe(409)
    expect((await problemOf(replay)).title).toBe('Replayed request')
  })

  it('refuses an order id reused with another body', async () => {
    await server.purchase('acme', 'team')
    const reused = await server.order({
      orderId: 'o-acme-team',
      type: 'purchase',
      customer: { id: 'acme' },
      sku: 'business',
    })
    expect(reused.status).toBe(409)
    expect((await problemOf(reused)).title).toBe('Order id reused')
  })

  it('upgrades, downgrades, renews and cancels, each checked against the catalog', async () => {
    await server.purchase('acme', 'starter')
    const change = (type: string, extra: Record<string, unknown>, id: string) =>
      server.order({ orderId: id, type, customer: { id: 'acme' }, ...extra })
    expect((await change('downgrade', { sku: 'team' }, 'c1')).status).toBe(422)
    expect((await change('upgrade', { sku: 'business', seats: 20 }, 'c2')).status).toBe(200)
    expect((await tokenOf('acme')).plan.id).toBe('business')
    expect((await change('downgrade', { sku: 'team' }, 'c3')).status).toBe(200)
    const renewed = await (await change('renewal', { termMonths: 1 }, 'c4')).json()
    expect(renewed.license.termEnd).toBe('2027-12-25T12:00:00.000Z')
    expect((await change('cancellation', {}, 'c5')).status).toBe(200)
    const gone = await server.call('GET', '/v1/entitlements/acme', SERVICE)
    expect(gone.status).toBe(410)
    expect((await change('upgrade', { sku: 'business' }, 'c6')).status).toBe(410)
  })
})

describe('tokens for the SDK', () => {
  it('issues a signed token the SDK verifies, with features, caps, term, devices and upgrade hints', async () => {
    await server.purchase('acme', 'starter', { seats: 3, addons: ['ai-assistant'] })
    const entitlements = await tokenOf('acme')
    expect(entitlements).toMatchObject({
      subject: 'acme',
      plan: { id: 'starter', tier: 1 },
      addons: ['ai-assistant'],
    })
    expect(entitlements.keyId).toMatch(/^k20261125-/)
    expect([...entitlements.features.keys()].sort()).toEqual(['ai-assistant', 'api-calls', 'export', 'seats'])
    expect(entitlements.features.get('seats')?.limit).toBe(3)
    expect(entitlements.features.get('api-calls')?.cap).toEqual({
      limit: 5,
      period: 'month',
      // The catalog's plans have hard caps.
      soft: false,
      ceiling: undefined,
      thresholds: undefined,
    })
    expect(entitlements.usage.get('api-calls')).toEqual({
      used: 0,
      resetsAt: Date.UTC(2026, 11, 25, 12, 0, 0),
      asOf: clock.now,
    })
    // The cheapest higher plan with a bigger cap is where a spent cap points.
    expect(entitlements.features.get('api-calls')?.upgrade).toEqual({
      plan: 'team',
      url: 'https://acme-tools.example/pricing?plan=team',
    })
    const sso = decide(entitlements, 'sso', {}, clock.now)
    expect(sso).toMatchObject({ allowed: false, reason: 'not_in_plan', upgrade: { plan: 'business' } })
    expect(decide(entitlements, 'export', {}, clock.now).expiresAt).toBe(Date.UTC(2027, 10, 25, 12, 0, 0))
  })

  it('signs customers on one plan tokens whose read models share every feature, each with its own term', async () => {
    await server.purchase('acme', 'team')
    // Another order an hour and 17 seconds on: its term ends on its own second.
    clock.now += 3_600_000 + 17_000
    await server.purchase('globex', 'team')
    const [acme, globex] = [await tokenOf('acme'), await tokenOf('globex')]
    expect(globex.features).toBe(acme.features)
    expect(globex.term.expiresAt! - acme.term.expiresAt!).toBe(3_600_000 + 17_000)
    // Each month of usage runs from its own order's day and second; both were counted as their tokens were signed.
    expect(globex.usage.get('api-calls')!.resetsAt! - acme.usage.get('api-calls')!.resetsAt!).toBe(3_617_000)
    expect([acme.usage.get('api-calls')!.asOf, globex.usage.get('api-calls')!.asOf]).toEqual([
      clock.now,
      clock.now,
    ])
    // One feature object, each customer's own term in the answer.
    expect(decide(acme, 'export', {}, clock.now).expiresAt).toBe(acme.term.expiresAt)
    expect(decide(globex, 'export', {}, clock.now).expiresAt).toBe(globex.term.expiresAt)
  })

  it('reuses the token while it is young (ETag, 304) and issues a new one past half its life', async () => {
    await server.purchase('acme')
    const first = await server.call('GET', '/v1/entitlements/acme', SERVICE)
    const etag = first.headers.get('etag')!
    expect(etag).toMatch(/^".+"$/)
    clock.now += 4 * MIN
    const conditional = await server.call('GET', '/v1/entitlements/acme', SERVICE, undefined, {
      'if-none-match': etag,
    })
    expect(conditional.status).toBe(304)
    clock.now += 2 * MIN // past half of the 10-minute life
    const renewed = await server.call('GET', '/v1/entitlements/acme', SERVICE, undefined, {
      'if-none-match': etag,
    })
    expect(renewed.status).toBe(200)
    expect(renewed.headers.get('etag')).not.toBe(etag)
  })

  it('answers 401 without credentials, 404 for an unknown customer', async () => {
    expect((await problemOf(await server.call('GET', '/v1/entitlements/acme'))).status).toBe(401)
    expect((await server.call('GET', '/v1/entitlements/acme', 'ck_nope')).status).toBe(401)
    expect((await problemOf(await server.call('GET', '/v1/entitlements/nobody', SERVICE))).status).toBe(404)
  })

  it('rotates keys: the new key is published first and signs after, and the old one stays while its tokens live', async () => {
    await server.purchase('acme')
    const before = await server.call('GET', '/v1/entitlements/acme', SERVICE)
    const oldToken = await before.text()
    const oldKid = (await verifier().verify(oldToken)).keyId
    const rotated = await (await server.admin('POST', '/keys/rotate')).json()
    expect(rotated.signsFrom).toBe(new Date(clock.now + 10 * MIN).toISOString())
    expect(rotated.jwks.keys.map((key: { kid: string }) => key.kid)).toEqual([rotated.kid, oldKid])
    // Published, not yet signing: a verifier that cached the set before the rotation still knows every new token.
    clock.now += 6 * MIN
    expect((await tokenOf('acme')).keyId).toBe(oldKid)
    expect((await verifier().verify(oldToken)).keyId).toBe(oldKid)
    clock.now += 5 * MIN
    expect((await tokenOf('acme')).keyId).toBe(rotated.kid)
    // Once the last token the old key signed has expired (and the skew allowance passed), it leaves the set.
    clock.now += 20 * MIN
    const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json()
    expect(jwks.keys.map((key: { kid: string }) => key.kid)).toEqual([rotated.kid])
  })
})

describe('embedded apps: activation by license key and device', () => {
  it('binds tokens to devices and enforces the seat count; deactivation frees a seat and revokes', async () => {
    const { licenseKey } = await server.purchase('acme', 'team', { seats: 2 })
    const activate = (fingerprint: string) =>
      server.call('POST', '/v1/activations', undefined, { licenseKey, fingerprint })
    const one = await activate('device-one-0001')
    expect(one.status).toBe(200)
    const { token } = await one.json()
    const bound = await verifier().verify(token)
    expect(bound.devices).toEqual({ max: 2, fingerprints: ['device-one-0001'] })
    expect(decide(bound, 'export', { device: 'device-two-0002' }, clock.now).reason).toBe(
      'device_not_allowed',
    )
    expect((await activate('device-two-0002')).status).toBe(200)
    expect((await activate('device-one-0001')).status).toBe(200) // the same device again takes no seat
    const third = await activate('device-three-03')
    expect(third.status).toBe(409)
    expect(await problemOf(third)).toMatchObject({ title: 'Device limit reached', limit: 2, active: 2 })
    const bye = await server.call('DELETE', '/v1/activations', undefined, {
      licenseKey,
      fingerprint: 'device-one-0001',
    })
    expect(bye.status).toBe(204)
    const revoked = await (await server.call('GET', '/v1/revocations', licenseKey)).json()
    expect(revoked.revoked).toContain(bound.tokenId)
    expect((await activate('device-three-03')).status).toBe(200)
    expect(
      (
        await server.call('POST', '/v1/activations', undefined, {
          licenseKey: 'lk_wrong',
          fingerprint: 'device-x-0001',
        })
      ).status,
    ).toBe(401)
    expect(
      (await server.call('POST', '/v1/activations', undefined, { licenseKey, fingerprint: 'short' })).status,
    ).toBe(422)
  })

  it('hands a license key device-bound tokens only: the plain token would make one seat five machines', async () => {
    const { licenseKey, apiKey } = await server.purchase('acme', 'team', { seats: 1 })
    const plain = await server.call('GET', '/v1/entitlements/acme', licenseKey)
    expect(plain.status).toBe(403)
    expect(await problemOf(plain)).toMatchObject({ title: 'Device-bound tokens only' })
    // The customer's server-side API key reads the plain token; no device may use it as its own.
    const token = await server.tokenOf('acme', apiKey)
    const entitlements = await verifier().verify(token)
    for (const device of ['laptop-0001', 'desktop-0002'])
      expect(decide(entitlements, 'export', { device }, clock.now).reason).toBe('device_not_allowed')
    expect(decide(entitlements, 'export', {}, clock.now).allowed).toBe(true)
  })

  it('a downgrade to fewer seats frees the newest devices at once and revokes their tokens; the oldest keep theirs', async () => {
    const { licenseKey } = await server.purchase('acme', 'team', { seats: 3 })
    const tokens: Record<string, string> = {}
    for (const fingerprint of ['device-a-0001', 'device-b-0002', 'device-c-0003']) {
      clock.now += 1000
      const answer = await server.call('POST', '/v1/activations', undefined, { licenseKey, fingerprint })
      tokens[fingerprint] = ((await answer.json()) as { token: string }).token
    }
    const down = await server.order({
      orderId: 'down-1',
      type: 'downgrade',
      customer: { id: 'acme' },
      seats: 1,
    })
    expect(down.status).toBe(200)
    const detail = (await (await server.admin('GET', '/customers/acme')).json()) as {
      devices: Array<{ fingerprint: string }>
    }
    expect(detail.devices.map((device) => device.fingerprint)).toEqual(['device-a-0001'])
    const { revoked } = (await (await server.call('GET', '/v1/revocations', licenseKey)).json()) as {
      revoked: string[]
    }
    const idOf = async (token: string) => (await verifier().verify(token)).tokenId
    expect(revoked).toContain(await idOf(tokens['device-b-0002']!))
    expect(revoked).toContain(await idOf(tokens['device-c-0003']!))
    expect(revoked).not.toContain(await idOf(tokens['device-a-0001']!))
    const again = await server.call('POST', '/v1/activations', undefined, {
      licenseKey,
      fingerprint: 'device-c-0003',
    })
    expect(again.status).toBe(409)
  })

  it('issues a long-lived offline license that lasts to the end of the grace period', async () => {
    const { licenseKey } = await server.purchase('acme', 'team', { termMonths: 12 })
    const response = await server.call('POST', '/v1/offline-licenses', undefined, {
      licenseKey,
      fingerprint: 'airgap-0001',
    })
    const { token } = await response.json()
    const offline = await verifier().verify(token)
    expect(offline.expiresAt).toBe(Date.UTC(2027, 10, 25, 12, 0, 0) + 14 * 86_400_000)
    clock.now += 300 * 86_400_000 // offline for 300 days: still verifies
    expect(
      decide(await verifier().verify(token), 'export', { device: 'airgap-0001' }, clock.now).allowed,
    ).toBe(true)
  })
})

describe('usage ingest: exactly once, per customer', () => {
  const line = (id: string, amount: number, extra: Record<string, unknown> = {}) => ({
    id,
    subject: 'acme',
    metric: 'api-calls',
    amount,
    start: clock.now,
    end: clock.now,
    ...extra,
  })

  it('counts each line id once and writes the total into the next token', async () => {
    await server.purchase('acme', 'team')
    const send = (lines: unknown[]) => server.call('POST', '/v1/usage', SERVICE, { batch: 'b1', lines })
    const first = await (await send([line('l1', 3), line('l2', 4)])).json()
    expect(first).toEqual({
      at: clock.now,
      accepted: 2,
      duplicates: 0,
      refused: 0,
      lines: [
        { id: 'l1', status: 'accepted' },
        { id: 'l2', status: 'accepted' },
      ],
      rejected: [],
    })
    const again = await (await send([line('l1', 3), line('l3', 1)])).json()
    expect(again).toMatchObject({
      accepted: 1,
      duplicates: 1,
      lines: [
        { id: 'l1', status: 'duplicate' },
        { id: 'l3', status: 'accepted' },
      ],
    })
    const usage = await (await server.admin('GET', '/customers/acme/usage')).json()
    expect(usage.usage).toEqual([{ metric: 'api-calls', windowEnd: '2026-12-25T12:00:00.000Z', total: 8 }])
    expect((await tokenOf('acme')).usage.get('api-calls')?.used).toBe(8)
  })

  it('counts a line dated after it arrived (a client clock running ahead) in the window it arrived in', async () => {
    await server.purchase('acme', 'team')
    const ahead = clock.now + 40 * 86_400_000
    const answer = await (
      await server.call('POST', '/v1/usage', SERVICE, {
        lines: [line('now', 2), line('ahead', 5, { start: ahead, end: ahead })],
      })
    ).json()
    expect(answer).toMatchObject({ accepted: 2, refused: 0 })
    // One window, the current one: without the clamp, 5 units sat in the window after next, shown to nobody.
    const usage = await (await server.admin('GET', '/customers/acme/usage')).json()
    expect(usage.usage).toEqual([{ metric: 'api-calls', windowEnd: '2026-12-25T12:00:00.000Z', total: 7 }])
    expect((await tokenOf('acme')).usage.get('api-calls')?.used).toBe(7)
  })

  it('judges lines one by one: a bad line is refused alone, with a code and a reason; the rest is stored', async () => {
    await server.purchase('acme', 'team')
    const answer = await (
      await server.call('POST', '/v1/usage', SERVICE, {
        lines: [
          line('a', 1),
          line('b', 1, { metric: 'teleports' }),
          line('c', 1, { subject: 'nobody' }),
          line('d', 1, { subject: undefined }),
          line('e', -1),
          line('f', 1, { subject: 'alice@example.com' }),
          line('g', 2e15),
          line('h', 1, { dimensions: { plan: 'x'.repeat(513) } }),
          line('i', 1, { start: 9e15, end: 9e15 }),
          line('j', 1, { start: clock.now + 1, end: clock.now }),
          'not a line',
          { ...line('k', 1), id: 42 },
          line('l', 2),
        ],
      })
    ).json()
    expect(answer).toMatchObject({ accepted: 2, duplicates: 0, refused: 11 })
    expect(answer.lines.map((l: { status: string; code?: string }) => l.code ?? l.status)).toEqual([
      'accepted',
      'unknown_metric',
      'unknown_customer',
      'subject_required',
      'invalid',
      'invalid',
      'invalid',
      'invalid',
      'invalid',
      'invalid',
      'invalid',
      'invalid',
      'accepted',
    ])
    expect(
      answer.rejected.slice(3).map((l: { id: string | null; reason: string }) => [l.id, l.reason]),
    ).toEqual([
      ['e', 'amount: a number from 0 to 1000000000000000'],
      ['f', 'subject: 1 to 64 of A-Za-z0-9._:-'],
      ['g', 'amount: a number from 0 to 1000000000000000'],
      ['h', 'dimensions.plan: a string of at most 512 characters'],
      ['i', 'start: whole epoch milliseconds from 0 to 8640000000000000'],
      ['j', 'end: end is before start'],
      [null, 'a usage line is a JSON object'],
      [null, 'id: 1 to 128 of A-Za-z0-9._:-'],
    ])
    // Only a batch that cannot be read at all is refused as a whole.
    for (const [bad, status] of [
      ['{"lines": [', 400],
      [{ lines: 'many' }, 422],
      [{ lines: Array.from({ length: 10_001 }, () => 0) }, 422],
      [{ batch: '../etc', lines: [] }, 422],
    ] as const) {
      const response = await server.call('POST', '/v1/usage', SERVICE, bad)
      expect((await problemOf(response)).status).toBe(status)
    }
    const huge = await server.call('POST', '/v1/usage', SERVICE, {
      lines: [],
      pad: 'x'.repeat(2 * 1024 * 1024),
    })
    expect(huge.status).toBe(413)
    expect((await (await server.admin('GET', '/customers/acme/usage')).json()).usage[0].total).toBe(3)
  })

  it('counts a line dated at the protocol’s time limit where it arrived, instead of acknowledging and dropping it', async () => {
    await server.purchase('acme', 'team')
    // Within the protocol's time limit, past what month arithmetic can reach: placed by its own start, no window
    // could hold it (it was refused before the server placed lines no later than their arrival).
    const answer = await (
      await server.call('POST', '/v1/usage', SERVICE, {
        lines: [line('late', 1, { start: 8.64e15, end: 8.64e15 })],
      })
    ).json()
    expect(answer.lines).toEqual([{ id: 'late', status: 'accepted' }])
    expect((await (await server.admin('GET', '/customers/acme/usage')).json()).usage).toEqual([
      { metric: 'api-calls', windowEnd: '2026-12-25T12:00:00.000Z', total: 1 },
    ])
  })

  it('scopes line ids per customer: the id another customer used first still counts', async () => {
    await server.purchase('acme', 'team')
    await server.purchase('globex', 'team')
    const send = (subject: string) =>
      server.call('POST', '/v1/usage', SERVICE, { lines: [line('same-id', 4, { subject })] })
    expect((await (await send('acme')).json()).lines).toEqual([{ id: 'same-id', status: 'accepted' }])
    expect((await (await send('globex')).json()).lines).toEqual([{ id: 'same-id', status: 'accepted' }])
    expect((await (await send('globex')).json()).lines).toEqual([{ id: 'same-id', status: 'duplicate' }])
    for (const customer of ['acme', 'globex'])
      expect((await (await server.admin('GET', `/customers/${customer}/usage`)).json()).usage[0].total).toBe(
        4,
      )
  })
})

describe("one customer's credentials reach nothing of another's", () => {
  it('reads, usage, access requests, revocations and events are confined to the credential’s customer', async () => {
    const acme = await server.purchase('acme', 'team')
    await server.purchase('globex', 'team')
    for (const key of [acme.apiKey, acme.licenseKey]) {
      const read = await server.call('GET', '/v1/entitlements/globex', key)
      expect(read.status).toBe(403)
      expect((await problemOf(read)).title).toBe('Forbidden')
      // The API key reads the customer's own token; the license key (a device's) gets device-bound ones only.
      const own = await server.call('GET', '/v1/entitlements/acme', key)
      expect(own.status).toBe(key === acme.apiKey ? 200 : 403)
      if (key === acme.licenseKey) expect((await problemOf(own)).title).toBe('Device-bound tokens only')
      const usage = await (
        await server.call('POST', '/v1/usage', key, {
          lines: [
            {
              id: `x-${key.slice(0, 4)}`,
              subject: 'globex',
              metric: 'api-calls',
              amount: 5,
              start: clock.now,
              end: clock.now,
            },
          ],
        })
      ).json()
      expect(usage).toMatchObject({ accepted: 0, rejected: [{ reason: 'forbidden' }] })
      const ask = await server.call('POST', '/v1/access-requests', key, {
        subject: 'globex',
        feature: 'sso',
        requestedBy: 'mallory',
      })
      expect(ask.status).toBe(403)
      expect((await server.call('GET', '/admin/customers', key)).status).toBe(401)
    }
    expect((await (await server.admin('GET', '/customers/globex/usage')).json()).usage).toEqual([])
    expect(await (await server.admin('GET', '/access-requests')).json()).toEqual({ requests: [] })
    await tokenOf('globex')
    await server.admin('POST', '/customers/globex/revoke')
    expect((await (await server.call('GET', '/v1/revocations', acme.apiKey)).json()).revoked).toEqual([])
    expect((await (await server.call('GET', '/v1/revocations', SERVICE)).json()).revoked).toHaveLength(1)
  })

  it('admin endpoints need the admin key', async () => {
    for (const key of [undefined, SERVICE, 'adm_wrong']) {
      const response = await server.call('GET', '/admin/customers', key)
      expect((await problemOf(response)).status).toBe(401)
    }
    expect((await server.call('GET', '/admin/customers', ADMIN)).status).toBe(200)
  })
})

describe('access requests', () => {
  it('a user asks, an admin approves, and the grant is in the next token', async () => {
    const { apiKey } = await server.purchase('acme', 'team')
    const ask = await server.call('POST', '/v1/access-requests', apiKey, {
      feature: 'sso',
      requestedBy: 'ana@acme.test',
      note: 'SAML',
    })
    expect(ask.status).toBe(201)
    const { id } = await ask.json()
    const twice = await server.call('POST', '/v1/access-requests', apiKey, {
      feature: 'sso',
      requestedBy: 'ana@acme.test',
    })
    expect(twice.status).toBe(200)
    expect((await twice.json()).id).toBe(id)
    const listed = await (await server.admin('GET', '/access-requests?status=pending')).json()
    expect(listed.requests).toMatchObject([
      { id, customerId: 'acme', feature: 'sso', requestedBy: 'ana@acme.test' },
    ])
    expect((await tokenOf('acme')).features.has('sso')).toBe(false)
    const approved = await server.admin('POST', `/access-requests/${id}/decision`, {
      approve: true,
      by: 'admin@vendor.test',
    })
    expect(await approved.json()).toMatchObject({ status: 'approved', feature: 'sso' })
    expect((await tokenOf('acme')).features.has('sso')).toBe(true)
    expect(
      (await server.admin('POST', `/access-requests/${id}/decision`, { approve: false, by: 'x' })).status,
    ).toBe(409)
    expect(
      (await server.call('POST', '/v1/access-requests', apiKey, { feature: 'teleport', requestedBy: 'ana' }))
        .status,
    ).toBe(422)
  })
})

describe('revocation and events', () => {
  it('streams license changes as Server-Sent Events, replaying what a reconnecting client missed', async () => {
    await server.purchase('acme', 'team')
    const controller = new AbortController()
    const response = await fetch(`${server.url}/v1/events`, {
      headers: { authorization: `Bearer ${SERVICE}` },
      signal: controller.signal,
    })
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const reader = response.body!.getReader()
    let text = ''
    const until = async (pattern: RegExp) => {
      while (!pattern.test(text)) text += new TextDecoder().decode((await reader.read()).value)
    }
    await until(/: connected/)
    await server.order({ orderId: 'up-1', type: 'upgrade', customer: { id: 'acme' }, sku: 'business' })
    await until(/event: entitlements\ndata: \{"subject":"acme"\}/)
    await server.admin('POST', '/customers/acme/revoke')
    await until(/event: revocations/)
    controller.abort()
    const firstId = Number(/id: (\d+)/.exec(text)![1])
    const replay = await fetch(`${server.url}/v1/events`, {
      headers: { authorization: `Bearer ${SERVICE}`, 'last-event-id': String(firstId) },
    })
    const replayReader = replay.body!.getReader()
    let replayed = ''
    while (!/event: revocations/.test(replayed))
      replayed += new TextDecoder().decode((await replayReader.read()).value)
    expect(replayed).not.toContain(`id: ${firstId}\n`)
    await replayReader.cancel()
    const gone = await server.call('GET', '/v1/entitlements/acme', SERVICE)
    expect((await problemOf(gone)).status).toBe(410)
  })
})

describe('the database', () => {
  it('migrates a new file once and opens it again without migrating twice', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'entitle-db-')), 'license.db')
    openDatabase(path).close()
    const db = openDatabase(path)
    expect(db.prepare('SELECT version FROM schema_migrations').all()).toEqual([
      { version: 1 },
      { version: 2 },
      { version: 3 },
      { version: 4 },
      { version: 5 },
      { version: 6 },
      { version: 7 },
      { version: 8 },
      { version: 9 },
    ])
    db.close()
  })
})

describe('admin reads and credential rotation', () => {
  it('shows a customer with license, grants, devices and usage; new credentials retire the old ones', async () => {
    const old = await server.purchase('acme', 'team', { seats: 2 })
    await server.call('POST', '/v1/activations', undefined, {
      licenseKey: old.licenseKey,
      fingerprint: 'laptop-0001',
    })
    await server.call('POST', '/v1/usage', old.apiKey, {
      lines: [{ id: 'u1', metric: 'api-calls', amount: 7, start: clock.now, end: clock.now }],
    })
    const detail = await (await server.admin('GET', '/customers/acme')).json()
    expect(detail).toMatchObject({
      id: 'acme',
      license: { sku: 'team', seats: 2, status: 'active' },
      grants: [],
      devices: [{ fingerprint: 'laptop-0001' }],
      usage: [{ metric: 'api-calls', total: 7 }],
    })
    expect((await server.admin('GET', '/customers/nobody')).status).toBe(404)
    expect((await server.admin('GET', '/customers/..%2F..%2Fetc')).status).toBe(404)
    const rotated = await (await server.admin('POST', '/customers/acme/credentials')).json()
    expect(rotated.credentials.apiKey).not.toBe(old.apiKey)
    expect((await server.call('GET', '/v1/entitlements/acme', old.apiKey)).status).toBe(401)
    expect((await server.call('GET', '/v1/entitlements/acme', old.licenseKey)).status).toBe(401)
    expect((await server.call('GET', '/v1/entitlements/acme', rotated.credentials.apiKey)).status).toBe(200)
    expect(await (await fetch(`${server.url}/healthz`)).json()).toEqual({ ok: true })
    const unknown = await fetch(`${server.url}/v2/anything`)
    expect(await problemOf(unknown)).toMatchObject({ status: 404, title: 'Not found' })
  })
})

describe('the OpenAPI document', () => {
  it('describes every route the server answers, with request schemas generated from its zod schemas', async () => {
    const document = await (await fetch(`${server.url}/openapi.json`)).json()
    expect(document.openapi).toBe('3.0.3')
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining([
        '/v1/orders',
        '/v1/entitlements/{subject}',
        '/v1/usage',
        '/v1/events',
        '/admin/keys/rotate',
      ]),
    )
    const order = document.components.schemas.Order
    expect(order.required).toEqual(expect.arrayContaining(['orderId', 'type', 'customer']))
    expect(order.properties.type.enum).toEqual([
      'purchase',
      'upgrade',
      'downgrade',
      'renewal',
      'cancellation',
      'topup',
    ])
    expect(order.additionalProperties).toBe(false)
    // Every route the app serves is in the document.
    const served = server.server.app.routes
      .filter((route) => route.method !== 'ALL')
      .map((route) => route.path.replaceAll(/:(\w+)/g, '{$1}'))
    for (const path of served)
      if (path !== '/healthz' && path !== '/openapi.json') expect(document.paths).toHaveProperty([path])
  })
})
