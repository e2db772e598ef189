import { HttpResponse, http } from 'msw'
import { describe, expect, it } from 'vitest'
import type { EntitlementClaim } from '../../src/core/claims.js'
import {
  type ChangeEvent,
  createEntitlements,
  createMemoryStorage,
  type EntitlementsClient,
  type ErrorEvent,
  metering,
} from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { NOW } from '../helpers.js'
import { clientFixture } from './fixture.js'
import { SERVER } from './harness.js'

const MIN = 60_000
const HOUR = 60 * MIN
const TEAM: Partial<EntitlementClaim> = {
  plan: { id: 'team' },
  features: { export: true, seats: { limit: 10 } },
}
const BUSINESS: Partial<EntitlementClaim> = {
  plan: { id: 'business' },
  features: { export: true, sso: true, seats: { limit: 50 } },
}

const fx = clientFixture({ revocationIntervalMs: 5 * MIN })
const client = fx.client

/** A client listening to the server's event stream, with revocation polling off. */
const streamingClient = () => client({ server: { url: SERVER, events: true, revocationIntervalMs: 0 } })

function collect<K extends 'change' | 'error'>(made: EntitlementsClient, type: K) {
  const seen: Array<K extends 'change' ? ChangeEvent : ErrorEvent> = []
  made.on(type, (event) => seen.push(event as never))
  return seen
}

describe('multi-tenant: fetching and caching', () => {
  it('fetches a customer on first check, then answers from memory', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    const first = await entitlements.check('export', { subject: 'acme' })
    expect(first).toMatchObject({
      allowed: true,
      reason: 'granted',
      subject: 'acme',
      plan: 'team',
      source: 'fresh',
      age: 0,
    })
    await fx.clock.advance(5_000)
    const second = await entitlements.check('seats', { subject: 'acme', usage: 10 })
    expect(second).toMatchObject({ allowed: false, reason: 'limit_exceeded', source: 'cache', age: 5_000 })
    expect(fx.server.count('entitlements/acme')).toBe(1)
    expect(fx.server.requests.find((r) => r.path === 'entitlements/acme')?.authorization).toBe(
      'Bearer sk_test',
    )
    expect(entitlements.stats()).toMatchObject({ hits: 1, misses: 1, fetches: 1, cached: 1 })
  })

  it('collapses a thousand concurrent misses for one customer into one request', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    const decisions = await Promise.all(
      Array.from({ length: 1000 }, () => entitlements.check('export', { subject: 'acme' })),
    )
    expect(decisions.every((d) => d.allowed)).toBe(true)
    expect(fx.server.count('entitlements/acme')).toBe(1)
  })

  it('keeps customers apart', async () => {
    fx.server.sell('acme', TEAM)
    fx.server.sell('globex', BUSINESS)
    const entitlements = client()
    expect((await entitlements.check('sso', { subject: 'acme' })).reason).toBe('not_in_plan')
    expect((await entitlements.check('sso', { subject: 'globex' })).allowed).toBe(true)
  })

  it('rejects a token the server sent for another customer', async () => {
    fx.server.sell('acme', TEAM)
    fx.server.state.wrongSubject = true
    const entitlements = client()
    const errors = collect(entitlements, 'error')
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'token_invalid',
      error: 'claims_invalid',
    })
    expect(errors[0]?.error.code).toBe('claims_invalid')
  })

  it('denies an unknown feature instead of granting it', async () => {
    fx.server.sell('acme', TEAM)
    expect(await client().check('exprot', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'not_in_plan',
    })
  })

  it('answers revoked for a customer whose license ended (410), and remembers it like a 404', async () => {
    let asked = 0
    fx.msw.use(
      http.get(`${SERVER}/v1/entitlements/initech`, () => {
        asked++
        return new HttpResponse(null, { status: 410 })
      }),
    )
    const entitlements = client()
    // The first answer was just fetched (fresh); the second is the verdict remembered (cache).
    for (const source of ['fresh', 'cache']) {
      expect(await entitlements.check('export', { subject: 'initech' })).toMatchObject({
        allowed: false,
        reason: 'revoked',
        source,
      })
    }
    expect(asked).toBe(1)
  })

  it('remembers for a minute that a customer has no license (404), without asking again', async () => {
    const entitlements = client()
    expect(await entitlements.check('export', { subject: 'nobody' })).toMatchObject({
      allowed: false,
      reason: 'not_in_plan',
      source: 'fresh',
    })
    expect(await entitlements.check('export', { subject: 'nobody' })).toMatchObject({
      allowed: false,
      reason: 'not_in_plan',
      source: 'cache',
    })
    expect(fx.server.count('entitlements/nobody')).toBe(1)
    await fx.clock.advance(61_000)
    await entitlements.check('export', { subject: 'nobody' })
    expect(fx.server.count('entitlements/nobody')).toBe(2)
  })

  it('keeps at most maxSubjects customers, dropping the least recently used and its timer', async () => {
    for (const name of ['a', 'b', 'c']) fx.server.sell(name, TEAM)
    const entitlements = client({ maxSubjects: 2 })
    await entitlements.check('export', { subject: 'a' })
    await entitlements.check('export', { subject: 'b' })
    await entitlements.check('export', { subject: 'c' })
    expect(entitlements.stats().cached).toBe(2)
    expect(entitlements.entitlements('a')).toBeUndefined()
    expect(entitlements.entitlements('c')?.subject).toBe('c')
  })

  it('needs a subject in multi-tenant use', async () => {
    await expect(client().check('export')).rejects.toThrow(TypeError)
    expect(() => client().checkSync('export', {})).toThrow(TypeError)
  })
})

describe('refresh', () => {
  it('refreshes in the background before the token expires, and the new token is used', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    await entitlements.check('export', { subject: 'acme' })
    const firstJti = entitlements.entitlements('acme')!.tokenId
    // Refresh is due at 80% of a one-hour life, minus up to 10% jitter (random fixed at 0.5: 75%).
    await fx.clock.advance(44 * MIN)
    expect(fx.server.count('entitlements/acme')).toBe(1)
    await fx.clock.advance(2 * MIN)
    expect(fx.server.count('entitlements/acme')).toBe(2)
    const tokenRequests = fx.server.requests.filter((r) => r.path === 'entitlements/acme')
    expect(tokenRequests[1]?.ifNoneMatch).toBe(firstJti)
    expect(entitlements.entitlements('acme')!.tokenId).not.toBe(firstJti)
    await fx.clock.advance(30 * MIN)
    expect((await entitlements.check('export', { subject: 'acme' })).allowed).toBe(true)
  })

  it('sends If-None-Match and keeps the token on 304', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    await entitlements.check('export', { subject: 'acme' })
    const jti = entitlements.entitlements('acme')!.tokenId
    await fx.clock.advance(10 * MIN)
    await entitlements.refresh('acme')
    expect(fx.server.requests.filter((r) => r.path === 'entitlements/acme')[1]?.ifNoneMatch).toBe(jti)
    expect(entitlements.stats().notModified).toBe(1)
    expect(entitlements.entitlements('acme')!.tokenId).toBe(jti)
    // A 304 confirms the token: its age starts again.
    expect((await entitlements.check('export', { subject: 'acme' })).age).toBe(0)
  })

  it('backs off instead of polling every second when a server answers 304 late in a token’s life', async () => {
    fx.server.sell('acme', TEAM)
    fx.server.state.always304 = true
    const entitlements = client({ backoff: { initialMs: 10_000, maxMs: 120_000 } })
    await entitlements.check('export', { subject: 'acme' })
    await fx.clock.advance(55 * MIN) // the refresh at ~45 minutes gets a 304, and so does every retry
    // The load, the refresh at 45:00, then retries after 5, 10, 20 and 40 s (random fixed at 0.5), then every 60 s
    // (the 120 s cap, halved) until 55:00: 1 + 1 + 12 requests, where a one-second loop would have made about 600.
    expect(fx.server.count('entitlements/acme')).toBe(14)
  })

  it('sees an upgrade right after refresh(subject), with what changed', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    const changes = collect(entitlements, 'change')
    await entitlements.check('export', { subject: 'acme' })
    expect((await entitlements.check('sso', { subject: 'acme' })).allowed).toBe(false)
    fx.server.sell('acme', BUSINESS)
    await entitlements.refresh('acme')
    expect((await entitlements.check('sso', { subject: 'acme' })).allowed).toBe(true)
    expect(changes.at(-1)).toMatchObject({
      subject: 'acme',
      changes: [
        { type: 'plan_changed', from: 'team', to: 'business' },
        { type: 'feature_added', feature: 'sso' },
        { type: 'limit_changed', feature: 'seats', from: 10, to: 50 },
      ],
    })
  })

  it('sees a downgrade at the next scheduled refresh with nothing for the user to do', async () => {
    fx.server.sell('acme', BUSINESS)
    const entitlements = client()
    await entitlements.check('sso', { subject: 'acme' })
    fx.server.sell('acme', TEAM)
    await fx.clock.advance(46 * MIN)
    expect(await entitlements.check('sso', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'not_in_plan',
    })
  })

  it('hears changes pushed over Server-Sent Events and refreshes that customer at once', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = streamingClient()
    const changes = collect(entitlements, 'change')
    await entitlements.check('export', { subject: 'acme' })
    await fx.clock.idle()
    expect(fx.server.streaming).toBe(true)
    fx.server.sell('acme', BUSINESS)
    fx.server.push('entitlements', { subject: 'acme' })
    await fx.clock.idle()
    expect(changes.at(-1)?.current.plan.id).toBe('business')
    expect((await entitlements.check('sso', { subject: 'acme' })).allowed).toBe(true)
    // Events for customers this client does not hold cost nothing.
    fx.server.push('entitlements', { subject: 'stranger' })
    await fx.clock.idle()
    expect(fx.server.count('entitlements/stranger')).toBe(0)
  })
})

describe('when the server fails', () => {
  it('retries with capped exponential backoff and full jitter', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client({ backoff: { initialMs: 10_000, maxMs: 40_000 } })
    const errors = collect(entitlements, 'error')
    await entitlements.check('export', { subject: 'acme' })
    fx.server.state.fail = 'error500'
    await fx.clock.advance(45 * MIN) // the scheduled refresh fails
    const after = fx.server.count('entitlements/acme')
    expect(errors.filter((e) => e.during === 'refresh').at(-1)).toMatchObject({
      subject: 'acme',
      error: { code: 'server_unavailable' },
    })
    // Retry n waits random · min(max, initial · 2^n): 0.5 · 10 s, then 0.5 · 20 s, then 0.5 · 40 s, then capped.
    await fx.clock.advance(5_000)
    expect(fx.server.count('entitlements/acme')).toBe(after + 1)
    await fx.clock.advance(10_000)
    expect(fx.server.count('entitlements/acme')).toBe(after + 2)
    await fx.clock.advance(20_000)
    expect(fx.server.count('entitlements/acme')).toBe(after + 3)
    await fx.clock.advance(20_000)
    expect(fx.server.count('entitlements/acme')).toBe(after + 4)
  })

  it('honours Retry-After', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client({ backoff: { initialMs: 1000, maxMs: 2000 } })
    await entitlements.check('export', { subject: 'acme' })
    fx.server.state.fail = 'retry-after'
    await fx.clock.advance(45 * MIN)
    const after = fx.server.count('entitlements/acme')
    await fx.clock.advance(119_000)
    expect(fx.server.count('entitlements/acme')).toBe(after)
    await fx.clock.advance(1_000)
    expect(fx.server.count('entitlements/acme')).toBe(after + 1)
  })

  it('takes a Retry-After of 3 000 years as a day: renewals stall for that long, not for good', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client({ backoff: { initialMs: 1000, maxMs: 2000 } })
    await entitlements.check('export', { subject: 'acme' })
    fx.server.state.fail = 'retry-after'
    fx.server.state.retryAfter = '99999999999'
    await fx.clock.advance(45 * MIN)
    const after = fx.server.count('entitlements/acme')
    fx.server.state.fail = undefined
    await fx.clock.advance(23 * 60 * MIN)
    expect(fx.server.count('entitlements/acme')).toBe(after)
    await fx.clock.advance(61 * MIN)
    expect(fx.server.count('entitlements/acme')).toBeGreaterThan(after)
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({ allowed: true })
  })

  it.each([
    ['a hanging server', 'hang'],
    ['a server that sends headers and then stalls the body', 'stall-body'],
  ] as const)('times out %s on the injected clock', async (_name, fail) => {
    fx.server.sell('acme', TEAM)
    fx.server.state.fail = fail
    const entitlements = client({ server: { url: SERVER, timeoutMs: 2_000, revocationIntervalMs: 0 } })
    const errors = collect(entitlements, 'error')
    const pending = entitlements.check('export', { subject: 'acme' })
    await fx.clock.advance(2_000)
    expect(await pending).toMatchObject({ allowed: false, reason: 'unavailable', source: 'fallback' })
    expect(errors[0]?.error.code).toBe('server_unavailable')
  })

  it('serves the stale token inside the grace window, then follows the failure policy', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client({
      staleGraceMs: 30 * MIN,
      featurePolicies: { export: 'open', seats: { allowed: true, limit: 3 } },
    })
    await entitlements.check('export', { subject: 'acme' })
    fx.server.state.fail = 'network'
    await fx.clock.advance(HOUR + 10 * MIN) // the token expired 10 minutes ago; every refresh failed
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
      allowed: true,
      source: 'stale',
      age: 70 * MIN,
    })
    await fx.clock.advance(21 * MIN) // grace is over
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
      allowed: true,
      reason: 'fallback',
      source: 'fallback',
    })
    expect(await entitlements.check('seats', { subject: 'acme' })).toMatchObject({
      allowed: true,
      reason: 'fallback',
      limit: 3,
    })
    expect(await entitlements.check('sso', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'unavailable',
    })
  })

  it('recovers by itself when the server comes back', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client({ backoff: { initialMs: 1000, maxMs: 60_000 } })
    await entitlements.check('export', { subject: 'acme' })
    fx.server.state.fail = 'error500'
    await fx.clock.advance(50 * MIN)
    fx.server.state.fail = undefined
    fx.server.sell('acme', BUSINESS)
    await fx.clock.advance(2 * MIN)
    expect(entitlements.entitlements('acme')?.plan.id).toBe('business')
  })

  it('reports a 401 as server_rejected', async () => {
    fx.server.sell('acme', TEAM)
    fx.server.state.fail = 'unauthorized'
    const entitlements = client()
    const errors = collect(entitlements, 'error')
    await entitlements.check('export', { subject: 'acme' })
    expect(errors.map((e) => e.error.code)).toContain('server_rejected')
  })
})

describe('revocation', () => {
  it('denies a revoked token once the revocation list says so', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    await entitlements.check('export', { subject: 'acme' })
    fx.server.revoke(entitlements.entitlements('acme')!.tokenId)
    fx.server.state.fail = 'error500'
    fx.server.state.failTokensOnly = true // the revocation list arrives; a successor token cannot be fetched
    await fx.clock.advance(5 * MIN)
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'revoked',
      plan: 'team',
    })
    expect(entitlements.stats().revoked).toBe(1)
  })

  it('fetches the successor of a revoked token at once', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    await entitlements.check('export', { subject: 'acme' })
    const revokedJti = entitlements.entitlements('acme')!.tokenId
    fx.server.revoke(revokedJti)
    await fx.clock.advance(5 * MIN)
    expect(fx.server.count('entitlements/acme')).toBe(2)
    expect(entitlements.entitlements('acme')!.tokenId).not.toBe(revokedJti)
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
      allowed: true,
      reason: 'granted',
    })
  })

  it('denies a customer whose license was cancelled and revoked', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    await entitlements.check('export', { subject: 'acme' })
    fx.server.cancel('acme')
    fx.server.revoke(entitlements.entitlements('acme')!.tokenId)
    await fx.clock.advance(5 * MIN)
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'not_in_plan',
    })
  })

  it('picks up revocations pushed over the event stream', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = streamingClient()
    await entitlements.check('export', { subject: 'acme' })
    await fx.clock.idle()
    const before = fx.server.count('revocations')
    fx.server.revoke(entitlements.entitlements('acme')!.tokenId)
    fx.server.push('revocations', {})
    await fx.clock.idle()
    expect(fx.server.count('revocations')).toBe(before + 1)
  })
})

describe('offline resilience', () => {
  it('restarts from storage with the network down', async () => {
    fx.server.sell('acme', TEAM)
    const storage = createMemoryStorage()
    const first = client({ storage })
    await first.check('export', { subject: 'acme' })
    await first.close()
    fx.server.state.fail = 'network'
    await fx.clock.advance(10 * MIN)
    const second = client({ storage })
    const decision = await second.check('export', { subject: 'acme' })
    expect(decision).toMatchObject({ allowed: true, reason: 'granted', age: 10 * MIN })
    expect(fx.server.count('entitlements/acme')).toBe(1)
  })

  it('restores an expired token as stale inside the grace window, not beyond', async () => {
    fx.server.sell('acme', TEAM)
    const storage = createMemoryStorage()
    const first = client({ storage })
    await first.check('export', { subject: 'acme' })
    await first.close()
    fx.server.state.fail = 'network'
    fx.clock.setClock(NOW + HOUR + 20 * MIN)
    expect(
      await client({ storage, staleGraceMs: 30 * MIN }).check('export', { subject: 'acme' }),
    ).toMatchObject({
      allowed: true,
      source: 'stale',
    })
    fx.clock.setClock(NOW + HOUR + 40 * MIN)
    expect(
      await client({ storage, staleGraceMs: 30 * MIN }).check('export', { subject: 'acme' }),
    ).toMatchObject({
      allowed: false,
      reason: 'unavailable',
    })
  })

  it('keeps checking from memory when storage fails, and says so', async () => {
    fx.server.sell('acme', TEAM)
    const broken = {
      get: () => Promise.reject(new Error('disk gone')),
      set: () => {
        throw new Error('disk full')
      },
      delete: () => undefined,
    }
    const entitlements = client({ storage: broken })
    const errors = collect(entitlements, 'error')
    expect((await entitlements.check('export', { subject: 'acme' })).allowed).toBe(true)
    expect(errors.filter((e) => e.during === 'storage').every((e) => e.error.code === 'storage_failed')).toBe(
      true,
    )
    expect(errors.some((e) => e.during === 'storage')).toBe(true)
  })
})

describe('clock rollback', () => {
  it('denies with clock_rollback when the clock is set back beyond the tolerance', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    await entitlements.check('export', { subject: 'acme' })
    await fx.clock.advance(10 * MIN)
    await entitlements.check('export', { subject: 'acme' })
    fx.clock.setClock(fx.clock.now - 30_000)
    expect((await entitlements.check('export', { subject: 'acme' })).allowed).toBe(true) // inside the 60 s tolerance
    fx.clock.setClock(fx.clock.now - 5 * MIN)
    expect(await entitlements.check('export', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'clock_rollback',
    })
  })

  it('keeps the server-corrected trusted time across a restart, after a clock that ran fast is fixed', async () => {
    fx.server.sell('acme', TEAM)
    const storage = createMemoryStorage()
    fx.clock.setClock(NOW + 2 * HOUR) // the machine's clock runs two hours fast
    const first = client({ storage })
    await first.check('export', { subject: 'acme' })
    await first.close()
    fx.clock.setClock(NOW) // fixed; the server, online, vouches for the real time
    fx.server.sell('acme', TEAM) // (the fake server shares the test clock: make it issue at the real time)
    const second = client({ storage })
    await second.refresh('acme')
    expect((await second.check('export', { subject: 'acme' })).allowed).toBe(true)
    await second.close()
    fx.server.state.fail = 'network' // a restart offline, with the correct clock
    const third = client({ storage })
    expect(await third.check('export', { subject: 'acme' })).toMatchObject({
      allowed: true,
      reason: 'granted',
    })
  })

  it('remembers trusted time across a restart, so an expired offline license is not revived', async () => {
    const issuer = await createTestIssuer({ now: () => fx.clock.now })
    const token = await issuer.issue({ features: { export: true } }, { expiresInSec: 30 * 86_400 })
    const storage = createMemoryStorage()
    const first = fx.singleTenant(issuer, token, { storage })
    await fx.clock.advance(40 * 86_400_000) // the license has expired
    expect((await first.check('export')).allowed).toBe(false)
    await first.close()
    fx.clock.setClock(NOW + 86_400_000) // the user sets the clock back to a day after purchase
    const second = fx.singleTenant(issuer, token, { storage })
    expect(await second.check('export')).toMatchObject({ allowed: false, reason: 'clock_rollback' })
  })
})

describe('single-tenant', () => {
  it('works fully offline from the app’s own token until its end', async () => {
    const issuer = await createTestIssuer({ now: () => fx.clock.now })
    const token = await issuer.issue(
      { plan: { id: 'desktop' }, features: { export: true } },
      { expiresInSec: 86_400 },
    )
    const entitlements = fx.singleTenant(issuer, token)
    expect(await entitlements.check('export')).toMatchObject({
      allowed: true,
      plan: 'desktop',
      source: 'fresh',
    })
    await fx.clock.advance(23 * HOUR)
    expect(await entitlements.check('export')).toMatchObject({ allowed: true, source: 'cache' })
    await fx.clock.advance(10_000) // trusted time is written down within seconds
    expect(fx.clock.pending()).toBe(1) // only the decision summary: a static token has nothing to refresh
  })

  it('never reuses an answer for another subject than the one it was given for', async () => {
    const issuer = await createTestIssuer({ now: () => fx.clock.now })
    const token = await issuer.issue({ features: { export: true } }, { subject: 'globex' })
    const entitlements = fx.singleTenant(issuer, token)
    await entitlements.check('export', { subject: 'globex' }) // fresh
    expect((await entitlements.check('export', { subject: 'globex' })).allowed).toBe(true) // memoized
    expect(await entitlements.check('export', { subject: 'initech' })).toMatchObject({
      allowed: false,
      reason: 'subject_mismatch',
    })
    expect(entitlements.checkSync('export', { subject: 'initech' })).toMatchObject({
      allowed: false,
      reason: 'subject_mismatch',
    })
    expect((await entitlements.check('export')).allowed).toBe(true)
  })

  it('uses the token it is given over an older one in storage', async () => {
    const issuer = await createTestIssuer({ now: () => fx.clock.now })
    const storage = createMemoryStorage()
    const options = {
      server: undefined,
      keys: issuer.jwks,
      issuer: issuer.issuer,
      audience: issuer.audience,
      storage,
    }
    const old = await issuer.issue(
      { plan: { id: 'basic' }, features: { export: true } },
      { expiresInSec: 86_400 },
    )
    const first = client({ ...options, token: old })
    await first.check('export')
    await first.close()
    const renewed = await issuer.issue(
      { plan: { id: 'pro' }, features: { export: true } },
      { expiresInSec: 86_400 },
    )
    expect((await client({ ...options, token: renewed }).check('export')).plan).toBe('pro')
  })

  it('asks getToken() again before the token expires', async () => {
    const issuer = await createTestIssuer({ now: () => fx.clock.now })
    let calls = 0
    const getToken = async () => {
      calls++
      return issuer.issue(
        { plan: { id: calls === 1 ? 'basic' : 'pro' }, features: { export: true } },
        { expiresInSec: 3600 },
      )
    }
    const entitlements = fx.singleTenant(issuer, getToken)
    expect((await entitlements.check('export')).plan).toBe('basic')
    await fx.clock.advance(46 * MIN)
    expect(calls).toBe(2)
    expect((await entitlements.check('export')).plan).toBe('pro')
  })

  it('denies a token signed by a stranger and reports why', async () => {
    const stranger = await createTestIssuer({ now: () => fx.clock.now })
    const trusted = await createTestIssuer({ now: () => fx.clock.now })
    const token = await stranger.issue({ features: { export: true } })
    const entitlements = fx.singleTenant(trusted, token)
    const errors = collect(entitlements, 'error')
    // A forged token is an answer, not an outage: no failure policy can grant it.
    expect(await entitlements.check('export')).toMatchObject({
      allowed: false,
      reason: 'token_invalid',
      error: 'signature_invalid',
    })
    expect(errors[0]?.error.code).toBe('signature_invalid')
  })
})

describe('checkSync', () => {
  it('answers not_loaded and starts a load, then answers from memory', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    expect(entitlements.checkSync('export', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'not_loaded',
    })
    await fx.clock.idle()
    expect(entitlements.checkSync('export', { subject: 'acme' })).toMatchObject({
      allowed: true,
      source: 'fresh',
    })
    expect(entitlements.checkSync('export', { subject: 'acme' })).toMatchObject({
      allowed: true,
      source: 'cache',
    })
    expect(fx.server.count('entitlements/acme')).toBe(1)
  })
})

describe('observability and lifecycle', () => {
  it('aggregates decision counts per feature and reports them periodically, not per check', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client({ decisionSummaryIntervalMs: MIN })
    const summaries: unknown[] = []
    entitlements.on('decision', (event) => summaries.push(event))
    for (let i = 0; i < 5; i++) await entitlements.check('export', { subject: 'acme' })
    await entitlements.check('sso', { subject: 'acme' })
    expect(summaries).toHaveLength(0)
    await fx.clock.advance(MIN)
    expect(summaries).toEqual([
      {
        at: NOW + MIN,
        features: {
          export: { allowed: 5, denied: 0, reasons: { granted: 5 } },
          sso: { allowed: 0, denied: 1, reasons: { not_in_plan: 1 } },
        },
      },
    ])
    expect(entitlements.stats().decisions.export?.allowed).toBe(5)
  })

  it('keeps memory bounded when feature names come from requests', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    await entitlements.check('export', { subject: 'acme' })
    for (let i = 0; i < 5000; i++) {
      expect(entitlements.checkSync(`made-up-${i}`, { subject: 'acme' }).reason).toBe('not_in_plan')
    }
    expect(Object.keys(entitlements.stats().decisions)).toHaveLength(1001) // 1000 names, then '(other)'
    expect(entitlements.stats().decisions['(other)']?.denied).toBe(4001)
    expect(entitlements.checkSync('export', { subject: 'acme' }).allowed).toBe(true)
  })

  it('survives a listener that throws', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client()
    entitlements.on('change', () => {
      throw new Error('listener bug')
    })
    expect((await entitlements.check('export', { subject: 'acme' })).allowed).toBe(true)
  })

  it('stops every timer on close, and still answers from memory', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client({ server: { url: SERVER, events: true, revocationIntervalMs: MIN } })
    await entitlements.check('export', { subject: 'acme' })
    await fx.clock.idle()
    expect(fx.clock.pending()).toBeGreaterThan(0)
    await entitlements.close()
    await fx.clock.idle()
    expect(fx.clock.pending()).toBe(0)
    const before = fx.server.requests.length
    await fx.clock.advance(2 * HOUR)
    expect(fx.server.requests.length).toBe(before)
    expect((await entitlements.check('export', { subject: 'acme' })).reason).toBe('unavailable')
  })

  it('refuses bad options with a TypeError', () => {
    const base = {
      keys: { kty: 'OKP', crv: 'Ed25519', x: 'AA' },
      issuer: 'https://i',
      audience: 'a',
    } as const
    expect(() => createEntitlements(base)).toThrow(/server .* or a token/)
    expect(() => createEntitlements({ ...base, token: 'a', server: { url: SERVER } })).toThrow(TypeError)
    expect(() => createEntitlements({ ...base, token: 'a', refreshAt: 1.5 })).toThrow(TypeError)
    expect(() => createEntitlements({ ...base, token: 'a', maxSubjects: 0 })).toThrow(TypeError)
    expect(() => createEntitlements({ ...base, token: 'a', staleGraceMs: -1 })).toThrow(TypeError)
    // Metering's options without the plug-in would be dropped silently: they are refused, saying what to import.
    const store = { consume: async () => ({ allowed: true, used: 0 }) }
    for (const [options, named] of [
      [{ usage: { url: SERVER } }, 'usage'],
      [{ fleet: { store } }, 'fleet'],
    ] as const)
      expect(() => createEntitlements({ ...base, token: 'a', ...options } as never)).toThrow(
        new RegExp(`^${named} is for metering: import \\{ metering \\} from 'entitle'`),
      )
    for (const fake of [{}, { name: 'metering' }, 'metering', true])
      expect(() => createEntitlements({ ...base, token: 'a', metering: fake } as never)).toThrow(
        /^metering must be the metering plug-in/,
      )
  })

  it('checks every option at construction, the backoffs and the meter settings included, naming the option', () => {
    const base = {
      ...{ keys: fx.server.issuer.jwks, issuer: SERVER, audience: 'app', platform: fx.clock.platform },
      metering,
    }
    const server = { url: SERVER }
    for (const [options, named] of [
      [{ backoff: { maxMs: -5 } }, 'backoff'],
      [{ backoff: { initialMs: Number.NaN } }, 'backoff'],
      [{ backoff: 'fast' }, 'backoff'],
      [{ usage: { backoff: { maxMs: 0 } } }, 'usage.backoff'],
      [{ usage: { flushIntervalMs: 2 ** 40 } }, 'usage.flushIntervalMs'],
      [{ usage: { maxBatchLines: 1.5 } }, 'usage.maxBatchLines'],
      [{ usage: { mode: 'sampled' } }, 'usage.mode'],
      [{ server: { ...server, timeoutMs: 0 } }, 'server.timeoutMs'],
      [{ server: { ...server, events: 'yes' } }, 'server.events'],
      [{ server: { url: 'not a url' } }, 'server.url'],
      [{ server: { ...server, headers: { 'x-a': 1 } } }, 'server.headers'],
      [{ decisionSummaryIntervalMs: -1 }, 'decisionSummaryIntervalMs'],
      [
        { fleet: { store: { consume: async () => ({ allowed: true, used: 0 }) }, onStoreError: 'open' } },
        'fleet.onStoreError',
      ],
    ] as const) {
      const made = () => createEntitlements({ ...base, server, ...(options as object) } as never)
      expect(made, JSON.stringify(options)).toThrow(TypeError)
      expect(made, JSON.stringify(options)).toThrow(new RegExp(`^${named.replace('.', '\\.')} must be`))
    }
    // A backoff given in part keeps the default of the other bound, and the meter's is checked with no destination.
    expect(() => client({ backoff: { maxMs: 60_000 } })).not.toThrow()
    expect(() =>
      createEntitlements({ ...base, token: 'a', usage: { persistIntervalMs: -1 } } as never),
    ).toThrow(/^usage\.persistIntervalMs must be/)
  })

  it('sends no decision summaries with decisionSummaryIntervalMs: 0, and arms no timer for them', async () => {
    fx.server.sell('acme', TEAM)
    const entitlements = client({
      decisionSummaryIntervalMs: 0,
      server: { url: SERVER, revocationIntervalMs: 0 },
    })
    const summaries: unknown[] = []
    entitlements.on('decision', (event) => summaries.push(event))
    await entitlements.check('export', { subject: 'acme' })
    await fx.clock.advance(10 * MIN)
    expect(summaries).toEqual([])
  })
})
