import { HttpResponse, http } from 'msw'
import { beforeEach, describe, expect, it } from 'vitest'
import type { EntitlementClaim } from '../../src/core/claims.js'
import {
  type ChangeEvent,
  createMemoryStorage,
  EntitlementError,
  type EntitlementsClientOptions,
} from '../../src/index.js'
import { MAX_TIMER_MS, withLongTimers } from '../../src/platform/timers.js'
import { createRedisUsageStore } from '../../src/redis/index.js'
import { createTestIssuer, type TestIssuer } from '../../src/testing.js'
import { createEventStreamParser, type ServerSentEvent } from '../../src/transport/sse.js'
import { NOW } from '../helpers.js'
import { clientFixture } from './fixture.js'
import { fakeLicenseServer, SERVER } from './harness.js'

// The client's promise, each way it broke: the answer is right, and the last-known-good license survives anything
// short of proof that it is bad.

const SECOND = 1000
const MIN = 60 * SECOND
const HOUR = 60 * MIN
const DAY = 24 * HOUR
const TEAM: Partial<EntitlementClaim> = {
  plan: { id: 'team' },
  features: { export: true, seats: { limit: 10 } },
}

let issuer: TestIssuer

const fx = clientFixture({ revocationIntervalMs: 5 * MIN })
const client = fx.client
beforeEach(async () => {
  issuer = await createTestIssuer({ now: () => fx.clock.now })
})

/** A single-tenant client of the test issuer's tokens. */
function own(token: EntitlementsClientOptions['token'], overrides: Partial<EntitlementsClientOptions> = {}) {
  return fx.singleTenant(issuer, token, overrides)
}

describe('long-lived tokens', () => {
  for (const [name, lifeSec] of [
    ['a 365-day', 365 * 86_400],
    ['a 10-year', 3650 * 86_400],
  ] as const) {
    it(`reads ${name} license once, then again only near its renewal, with no busy loop`, async () => {
      let reads = 0
      const token = await issuer.issue({ features: { export: true } }, { expiresInSec: lifeSec })
      // The decision summary's minute timer would fire millions of times over ten years of manual time.
      const license = own(
        () => {
          reads++
          return token
        },
        { decisionSummaryIntervalMs: 30 * DAY },
      )
      expect((await license.check('export')).allowed).toBe(true)
      await fx.clock.advance(3 * SECOND)
      await fx.clock.advance(DAY)
      expect(reads).toBe(1)
      // Renewal is due at 80% of the life, minus up to 10% jitter (random is 0.5 here: 75%).
      await fx.clock.advance(lifeSec * 1000 * 0.74 - DAY)
      expect(reads).toBe(1)
      await fx.clock.advance(lifeSec * 1000 * 0.02)
      expect(reads).toBe(2)
    })
  }

  it('refuses a Redis timeout no timer can hold, instead of timing out every call at once', () => {
    const redis = { evalsha: async () => [1, '1'], eval: async () => [1, '1'] }
    for (const timeoutMs of [2 ** 31, Number.POSITIVE_INFINITY, 0, Number.NaN, 0.5, 250.5])
      expect(() => createRedisUsageStore(redis as never, { timeoutMs })).toThrow(TypeError)
    expect(() => createRedisUsageStore(redis as never, { timeoutMs: 1000 })).not.toThrow()
  })

  it('re-arms a timer longer than setTimeout can hold, in steps, and cancels it at any step', () => {
    let now = 0
    const armed: Array<{ ms: number; fn: () => void }> = []
    const cleared: unknown[] = []
    const platform = withLongTimers({
      now: () => now,
      random: () => 0.5,
      setTimeout: (fn, ms) => {
        armed.push({ ms, fn })
        return armed.length
      },
      clearTimeout: (handle) => {
        cleared.push(handle)
      },
      fetch: globalThis.fetch,
    })
    let fired = false
    const handle = platform.setTimeout(() => {
      fired = true
    }, 3 * MAX_TIMER_MS)
    expect(armed.map((timer) => timer.ms)).toEqual([MAX_TIMER_MS])
    now += MAX_TIMER_MS
    armed[0]!.fn()
    now += MAX_TIMER_MS
    armed[1]!.fn()
    expect(armed[2]!.ms).toBe(MAX_TIMER_MS)
    expect(fired).toBe(false)
    platform.clearTimeout(handle)
    expect(cleared).toEqual([3])
    platform.setTimeout(() => {}, Number.NaN)
    expect(armed.at(-1)!.ms).toBe(0)
  })
})

describe('a token proven bad is an answer, never an outage', () => {
  it('denies a forged token even when the failure policy is open', async () => {
    const stranger = await createTestIssuer({ now: () => fx.clock.now, issuer: issuer.issuer })
    const forged = await stranger.issue({ features: { export: true } })
    const license = own(forged, { failurePolicy: 'open', featurePolicies: { export: 'open' } })
    expect(await license.check('export')).toMatchObject({
      allowed: false,
      reason: 'token_invalid',
      error: 'signature_invalid',
    })
  })

  it('answers expired (not unavailable) for an expired license, and names the code', async () => {
    const expired = await issuer.issue(
      { features: { export: true } },
      { issuedAt: Math.floor((NOW - 40 * DAY) / 1000), expiresInSec: 30 * 86_400 },
    )
    const license = own(expired, { featurePolicies: { export: 'open' } })
    expect(await license.check('export')).toMatchObject({
      allowed: false,
      reason: 'expired',
      error: 'token_expired',
    })
  })

  it('shows a wrong audience or issuer on the decision, not only on error events', async () => {
    const token = await issuer.issue({ features: { export: true } })
    expect(await own(token, { audience: 'another-app' }).check('export')).toMatchObject({
      allowed: false,
      reason: 'token_invalid',
      error: 'audience_invalid',
    })
    expect(await own(token, { issuer: 'https://elsewhere.test' }).check('export')).toMatchObject({
      allowed: false,
      error: 'issuer_invalid',
    })
  })

  it('denies a token the server signed with an unknown key under an open policy', async () => {
    const stranger = await createTestIssuer({ now: () => fx.clock.now, issuer: SERVER, audience: 'app' })
    fx.msw.use(
      http.get(`${SERVER}/v1/entitlements/:subject`, async ({ params }) =>
        HttpResponse.text(await stranger.issue(TEAM, { subject: String(params.subject), kid: 'rogue' })),
      ),
    )
    const entitlements = client({ failurePolicy: 'open' })
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'token_invalid',
      error: 'key_unknown',
    })
  })

  it('still applies the failure policy when no answer can be had (the server is down)', async () => {
    fx.server.state.fail = 'network'
    const entitlements = client({ featurePolicies: { export: 'open' } })
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
      allowed: true,
      reason: 'fallback',
    })
    // Own keys only: a feature named like an Object.prototype member gets the client's policy.
    for (const feature of ['__proto__', 'constructor', 'toString'])
      expect(await entitlements.check(feature, { subject: 'acme' })).toMatchObject({
        allowed: false,
        reason: 'unavailable',
      })
  })
})

describe('a token expired on arrival is an answer, not an outage', () => {
  const POLICIES = [
    ['closed', 'closed'],
    ['open', 'open'],
    ['a declared fallback', { allowed: true, limit: 5 }],
  ] as const

  it.each(POLICIES)(
    'a token() source handing out an expired token denies it expired, failure policy %s',
    async (_name, policy) => {
      // Expired 30 minutes ago: inside the stale grace of an hour, which is for tokens good when received.
      const late = await createTestIssuer({ now: () => fx.clock.now - 90 * MIN })
      const expired = await late.issue({ features: { export: true } }, { expiresInSec: 3600 })
      const app = fx.singleTenant(late, async () => expired, { failurePolicy: policy })
      expect(await app.check('export')).toMatchObject({
        allowed: false,
        reason: 'expired',
        error: 'token_expired',
      })
      expect(app.snapshot().decisions.export).toMatchObject({ allowed: false, reason: 'expired' })
    },
  )

  it.each(POLICIES)(
    'a license server handing out an expired token: expired, failure policy %s',
    async (_name, policy) => {
      const late = await fakeLicenseServer(fx.msw, {
        get now() {
          return fx.clock.now - 90 * MIN
        },
      })
      late.sell('acme', TEAM)
      const entitlements = client({ keys: late.issuer.jwks, failurePolicy: policy })
      expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
        allowed: false,
        reason: 'expired',
        error: 'token_expired',
      })
    },
  )

  it('still serves a token good when received, stale, while its refreshes fail', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({ allowed: true })
    fx.server.state.fail = 'network'
    await fx.clock.advance(HOUR + 10 * MIN)
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
      allowed: true,
      source: 'stale',
    })
  })

  it('a token string past its end is expired at once: nothing renews it, so there is no refresh to wait for', async () => {
    const token = await issuer.issue({ features: { export: true } }, { expiresInSec: 3600 })
    const app = own(token)
    expect((await app.check('export')).allowed).toBe(true)
    await fx.clock.advance(HOUR + MIN)
    expect(await app.check('export')).toMatchObject({ allowed: false, reason: 'expired' })
  })
})

describe('clock rollback', () => {
  it('catches a clock set back after a crash 1.5 s after the first check', async () => {
    fx.server.sell('acme', TEAM)
    const storage = createMemoryStorage()
    const first = client({ storage })
    await first.check('export', { subject: 'acme' })
    await fx.clock.advance(1500)
    // Killed: no close(). The clock is then set back three days, and the app starts offline.
    fx.server.state.fail = 'network'
    fx.clock.setClock(fx.clock.now - 3 * DAY)
    const second = client({ storage })
    expect(await second.check('export', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'clock_rollback',
    })
  })

  it('does not lock a customer out after a clock that ran two hours fast once, then was set right', async () => {
    const token = await issuer.issue({ features: { export: true } }, { expiresInSec: 30 * 86_400 })
    const storage = createMemoryStorage()
    const first = own(token, { storage })
    await first.check('export')
    fx.clock.setClock(fx.clock.now + 2 * HOUR) // a one-off jump ahead
    expect((await first.check('export')).allowed).toBe(true)
    await fx.clock.advance(10 * SECOND)
    fx.clock.setClock(fx.clock.now - 2 * HOUR) // corrected
    expect(await first.check('export')).toMatchObject({ allowed: true, reason: 'granted' })
    await fx.clock.advance(10 * SECOND)
    await first.close()
    const second = own(token, { storage })
    expect(await second.check('export')).toMatchObject({ allowed: true, reason: 'granted' })
    // Set back for real, beyond the tolerance: still caught.
    fx.clock.setClock(fx.clock.now - 10 * MIN)
    expect(await second.check('export')).toMatchObject({ allowed: false, reason: 'clock_rollback' })
  })
})

describe('a clock judgement never destroys data', () => {
  it('keeps every stored token through a start with the clock two hours fast while the server is down', async () => {
    fx.server.sell('acme', TEAM)
    fx.server.sell('globex', TEAM)
    const storage = createMemoryStorage()
    const first = client({ storage })
    for (const subject of ['acme', 'globex']) await first.check('export', { subject })
    await first.close()
    expect([...Array.from(['acme', 'globex'], (s) => storage.get(`entitle:token:${s}`))]).not.toContain(
      undefined,
    )

    // One start with the clock 2 h 1 min fast (past exp and the stale grace) while the license server is down.
    fx.server.state.fail = 'network'
    fx.clock.setClock(fx.clock.now + 2 * HOUR + MIN)
    const fast = client({ storage })
    expect(await fast.check('export', { subject: 'acme' })).toMatchObject({ allowed: false })
    await fast.close()
    // Judged expired by a clock the client cannot trust: kept, not deleted.
    expect(storage.get('entitle:token:acme')).toBeDefined()
    expect(storage.get('entitle:token:globex')).toBeDefined()

    // Back at the right time, still offline: a customer never seen answers as the failure policy says (there is
    // no token a clock set back could revive); a stored one answers clock_rollback, as the mark the fast start left
    // says (it cannot be told from a clock set back), until the server vouches for the time again.
    fx.clock.setClock(fx.clock.now - 2 * HOUR - MIN)
    const back = client({ storage })
    expect(await back.check('export', { subject: 'initech' })).toMatchObject({ reason: 'unavailable' })
    expect(await back.check('export', { subject: 'acme' })).toMatchObject({ reason: 'clock_rollback' })
    fx.server.state.fail = undefined
    await back.refresh('acme')
    expect(await back.check('export', { subject: 'acme' })).toMatchObject({ allowed: true })
    expect(await back.check('export', { subject: 'globex' })).toMatchObject({ allowed: true })
  })
})

describe('key rotation', () => {
  it('accepts a token signed with a key rotated in half a second ago, fetching the key set at once', async () => {
    const next = await createTestIssuer({
      now: () => fx.clock.now,
      issuer: SERVER,
      audience: 'app',
      kid: 'key-2',
    })
    let keys = [fx.server.issuer.publicJwk]
    let jwksFetches = 0
    fx.msw.use(
      http.get(`${SERVER}/.well-known/jwks.json`, () => {
        jwksFetches++
        return HttpResponse.json({ keys })
      }),
    )
    fx.server.sell('acme', TEAM)
    const entitlements = client({ keys: new URL('/.well-known/jwks.json', SERVER) })
    expect((await entitlements.check('export', { subject: 'acme' })).allowed).toBe(true)
    // The server rotates: it publishes key-2 and signs the next token with it.
    keys = [fx.server.issuer.publicJwk, next.publicJwk]
    fx.msw.use(
      http.get(`${SERVER}/v1/entitlements/:subject`, async ({ params }) =>
        HttpResponse.text(await next.issue(TEAM, { subject: String(params.subject) }), {
          headers: { etag: 'rotated' },
        }),
      ),
    )
    await fx.clock.advance(500)
    await entitlements.refresh('acme')
    expect(entitlements.entitlements('acme')?.keyId).toBe('key-2')
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({ allowed: true })
    expect(jwksFetches).toBe(2)
  })

  it('does not refetch the key set for the same unknown kid twice within the cool-down', async () => {
    let jwksFetches = 0
    fx.msw.use(
      http.get(`${SERVER}/.well-known/jwks.json`, () => {
        jwksFetches++
        return HttpResponse.json({ keys: [issuer.publicJwk] })
      }),
    )
    const rogue = await issuer.issue({ features: { export: true } }, { kid: 'nobody' })
    const keys = new URL('/.well-known/jwks.json', SERVER)
    for (let i = 0; i < 5; i++) {
      const license = own(rogue, { keys })
      expect((await license.check('export')).error).toBe('key_unknown')
    }
    // Each client has its own verifier: first load, then one refetch for the new kid, per client.
    expect(jwksFetches).toBe(10)
    jwksFetches = 0
    const license = own(rogue, { keys })
    await license.check('export')
    await fx.clock.advance(61 * SECOND) // the verdict is remembered for a minute; then the token is verified again
    await license.check('export')
    await license.check('export')
    expect(jwksFetches).toBe(3)
  })
})

describe('revocation list changes', () => {
  it('fetches a successor at once when the list changes, even to one of the same length', async () => {
    fx.server.sell('acme', TEAM)
    let list = ['someone-elses-token']
    fx.msw.use(
      http.get(`${SERVER}/v1/revocations`, () =>
        HttpResponse.json({ revoked: list }, { headers: { etag: list.join() } }),
      ),
    )
    const entitlements = client()
    expect((await entitlements.check('export', { subject: 'acme' })).allowed).toBe(true)
    const first = fx.server.currentJti('acme')!
    fx.server.revoke(first) // the fake server hands out a new token from now on
    list = [first]
    const fetches = fx.server.count('entitlements/acme')
    await fx.clock.advance(5 * MIN)
    expect(fx.server.count('entitlements/acme')).toBe(fetches + 1)
    expect(entitlements.entitlements('acme')?.tokenId).not.toBe(first)
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({ allowed: true })
  })
})

describe('revocations without a multi-tenant server', () => {
  it('fetches the revocation list for a single-tenant client that names its server', async () => {
    const token = await issuer.issue({ features: { export: true } }, { tokenId: 'license-1' })
    const license = own(token, { revocations: { url: SERVER, intervalMs: 5 * MIN } })
    expect((await license.check('export')).allowed).toBe(true)
    fx.server.revoke('license-1')
    await fx.clock.advance(5 * MIN)
    expect(await license.check('export')).toMatchObject({ allowed: false, reason: 'revoked' })
  })

  it('imports a signed revocation list, keeps it across a restart, and ignores an older one', async () => {
    const token = await issuer.issue({ features: { export: true } }, { tokenId: 'license-1' })
    const storage = createMemoryStorage()
    const first = own(token, { storage })
    expect((await first.check('export')).allowed).toBe(true)
    const list = await issuer.revocationList(['license-1', 'license-0'])
    expect(await first.importRevocations(list)).toBe(2)
    expect(await first.check('export')).toMatchObject({ allowed: false, reason: 'revoked' })
    const older = await issuer.revocationList([], { issuedAt: Math.floor(fx.clock.now / 1000) - 60 })
    expect(await first.importRevocations(older)).toBe(2)
    await first.close()
    const second = own(token, { storage })
    expect(await second.check('export')).toMatchObject({ allowed: false, reason: 'revoked' })
  })

  it('refuses a revocation list that is forged, or is an entitlement token', async () => {
    const stranger = await createTestIssuer({ now: () => fx.clock.now, issuer: issuer.issuer })
    const license = own(await issuer.issue({ features: { export: true } }))
    await expect(license.importRevocations(await stranger.revocationList(['x']))).rejects.toMatchObject({
      code: 'signature_invalid',
    })
    const token = await issuer.issue({ features: { export: true } })
    const error = await license.importRevocations(token).catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(EntitlementError)
    expect((error as EntitlementError).code).toBe('type_invalid')
    // It names what it wanted: a revocation list, not the entitlement token it was given.
    expect((error as EntitlementError).message).toBe(
      'the header typ must be "revocation-list+jwt": this is not a signed revocation list',
    )
    await expect(license.importRevocations('not a list')).rejects.toMatchObject({ code: 'token_malformed' })
    await expect(license.importRevocations('a.b.c'.repeat(300_000))).rejects.toMatchObject({
      code: 'token_malformed',
    })
    const noList = await issuer.sign(
      {
        iss: issuer.issuer,
        aud: issuer.audience,
        iat: Math.floor(fx.clock.now / 1000),
        revoked: 'license-1',
      },
      { typ: 'revocation-list+jwt' },
    )
    await expect(license.importRevocations(noList)).rejects.toMatchObject({ code: 'claims_invalid' })
    expect((await license.check('export')).allowed).toBe(true)
  })

  it('reports an unreadable stored token, forgets it, and loads a fresh one', async () => {
    fx.server.sell('acme', TEAM)
    const storage = createMemoryStorage()
    storage.set('entitle:token:acme', '{ not json')
    const entitlements = client({ storage })
    const errors: string[] = []
    entitlements.on('error', ({ error }) => errors.push(error.code))
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
      allowed: true,
      source: 'fresh',
    })
    expect(errors).toContain('storage_failed')
    await entitlements.close()
    expect(JSON.parse((await storage.get('entitle:token:acme'))!).token).toMatch(/^ey/)
  })
})

describe('event stream', () => {
  it('backs off a stream that opens and closes at once, instead of reconnecting every second', async () => {
    let opens = 0
    fx.msw.use(
      http.get(`${SERVER}/v1/events`, () => {
        opens++
        return new HttpResponse(': hello\n\n', { headers: { 'content-type': 'text/event-stream' } })
      }),
    )
    // The stream opens at the client's first use (a Worker makes its client where no I/O may start).
    client({ server: { url: SERVER, events: true, revocationIntervalMs: 0 } }).checkSync('export', {
      subject: 'acme',
    })
    await fx.clock.advance(60 * SECOND)
    // 1 s, 2 s, 4 s, … (full jitter at 0.5, at least 1 s): a handful, not sixty.
    expect(opens).toBeLessThanOrEqual(8)
    expect(opens).toBeGreaterThan(2)
  })

  it('parses a CRLF split across chunks as one line end, and drops a leading BOM', () => {
    const events: ServerSentEvent[] = []
    const parse = createEventStreamParser((event) => events.push(event))
    parse('\uFEFFid: 7\r')
    parse('\nevent: revocations\r')
    parse('\ndata: {}\r')
    parse('\n\r')
    parse('\n')
    expect(events).toEqual([{ id: '7', event: 'revocations', data: '{}' }])
    const split = createEventStreamParser((event) => events.push(event))
    for (const char of 'event: entitlements\r\ndata: {"subject":"a"}\r\n\r\n') split(char)
    expect(events[1]).toEqual({ id: undefined, event: 'entitlements', data: '{"subject":"a"}' })
  })

  it('takes a block with an id and no data as the cursor only: no event, and the next event carries that id', () => {
    const events: ServerSentEvent[] = []
    const ids: string[] = []
    const parse = createEventStreamParser(
      (event) => events.push(event),
      (id) => ids.push(id),
    )
    parse(': connected\nid: 41\n\n')
    expect([events, ids]).toEqual([[], ['41']])
    parse(': heartbeat\n\n')
    parse('event: revocations\ndata: {}\n\n')
    expect([events, ids]).toEqual([[{ id: '41', event: 'revocations', data: '{}' }], ['41']])
  })

  it('drops an event whose data lines never end it, instead of holding them without bound', () => {
    const events: ServerSentEvent[] = []
    const parse = createEventStreamParser((event) => events.push(event))
    // Short lines, each under the line limit, and no blank line: 2 MB of data for one event that never ends.
    const chunk =
      'data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n'.repeat(
        1000,
      )
    for (let i = 0; i < 20; i++) parse(chunk)
    parse('\n')
    parse('event: revocations\ndata: {}\n\n')
    expect(events).toEqual([{ id: undefined, event: 'revocations', data: '{}' }])
  })
})

describe('change events', () => {
  it('fires no change for a first load, and one for a real change', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    const changes: ChangeEvent[] = []
    entitlements.on('change', (event) => changes.push(event))
    await entitlements.check('export', { subject: 'acme' })
    expect(changes).toEqual([])
    fx.server.sell('acme', { plan: { id: 'business' }, features: { export: true, sso: true } })
    await entitlements.refresh('acme')
    expect(changes.map((change) => change.changes.map((c) => c.type))).toEqual([
      expect.arrayContaining(['plan_changed', 'feature_added']),
    ])
  })
})

describe('names and contexts from outside', () => {
  it('looks failure policies up by own keys: __proto__ and constructor fall to the default policy', async () => {
    fx.server.state.fail = 'error500'
    const made = client({ failurePolicy: 'closed', featurePolicies: { export: 'open' } })
    for (const feature of ['__proto__', 'constructor', 'toString', 'hasOwnProperty'])
      expect(await made.check(feature, { subject: 'acme' })).toMatchObject({
        allowed: false,
        reason: 'unavailable',
        source: 'fallback',
      })
    expect(await made.check('export', { subject: 'acme' })).toMatchObject({
      allowed: true,
      source: 'fallback',
    })
  })

  it('a context of the wrong types is an invalid request from the client too, never a throw or a pass', async () => {
    fx.server.sell('acme', { plan: { id: 'team' }, features: { reports: { roles: ['admin'] } } })
    const made = client()
    await made.load('acme')
    for (const context of [
      { subject: 'acme', roles: 'superadmin-wannabe' },
      { subject: 'acme', region: 49 },
      { subject: 'acme', activeDevices: Number.NaN },
    ]) {
      expect(made.checkSync('reports', context as never)).toMatchObject({
        allowed: false,
        reason: 'invalid_request',
      })
      expect(await made.check('reports', context as never)).toMatchObject({
        allowed: false,
        reason: 'invalid_request',
      })
    }
    // A multi-tenant client is told who the customer is, or it is a TypeError at the boundary (documented).
    expect(() => made.checkSync('reports', null as never)).toThrow(TypeError)
  })

  it.each(['x', 1, true, 5n])(
    'a single-tenant context of %s is an invalid request that poisons no plain answer, and is answered by none',
    async (bad) => {
      const token = await issuer.issue({ features: { export: true } }, { expiresInSec: 3600 })
      const app = own(token)
      await app.load()
      // A bad context first: it must not become the plain answer.
      expect(app.checkSync('export', bad as never)).toMatchObject({
        allowed: false,
        reason: 'invalid_request',
      })
      expect(app.checkSync('export')).toMatchObject({ allowed: true, reason: 'granted' })
      expect(await app.check('export')).toMatchObject({ allowed: true, reason: 'granted' })
      // A plain answer memoized first: it must not answer the bad context.
      expect(app.checkSync('export', bad as never)).toMatchObject({
        allowed: false,
        reason: 'invalid_request',
      })
      expect(await app.check('export', bad as never)).toMatchObject({
        allowed: false,
        reason: 'invalid_request',
      })
    },
  )
})
