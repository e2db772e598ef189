import { mkdtempSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireEntitlement } from '../../src/express/index.js'
import {
  createEntitlements,
  createEntitlementVerifier,
  decide,
  type EntitlementsClient,
  metering,
  type ThresholdEvent,
} from '../../src/index.js'
import { createFileStorage } from '../../src/node/index.js'
import { createRedisUsageStore } from '../../src/redis/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { startRedis } from './redis-server.js'

// Soft limits through the public API: past the limit is allowed as overage, the ceiling denies whole and counts
// nothing, the default stays hard; in one process and across two instances on one Redis.

const ISSUER = 'https://license.soft.test'
let issuer: Awaited<ReturnType<typeof createTestIssuer>>
let redis: Awaited<ReturnType<typeof startRedis>>
const clients: EntitlementsClient[] = []
const connections: Redis[] = []
beforeAll(async () => {
  issuer = await createTestIssuer({ issuer: ISSUER, audience: 'app' })
  redis = await startRedis()
})
afterAll(async () => {
  await Promise.all(clients.map((client) => client.close()))
  for (const connection of connections) connection.disconnect()
  await redis.stop()
})

const resetsAt = () => Math.floor(Date.now() / 1000) + 86_400
const seatsAndCalls = (cap: Record<string, unknown>, seats: Record<string, unknown> = { limit: 10 }) =>
  issuer.issue(
    {
      plan: { id: 'team' },
      features: {
        seats,
        'api-calls': { cap: { limit: 5, period: 'month', used: 0, resetsAt: resetsAt(), ...cap } },
      },
    },
    { subject: 'acme' },
  )

function client(token: string, fleet?: { prefix: string }) {
  const options = { token, keys: issuer.jwks, issuer: ISSUER, audience: 'app', metering }
  if (fleet === undefined) {
    const made = createEntitlements(options)
    clients.push(made)
    return made
  }
  const connection = new Redis(redis.url)
  connections.push(connection)
  const made = createEntitlements({
    ...options,
    fleet: { store: createRedisUsageStore(connection, { prefix: fleet.prefix }), onStoreError: 'closed' },
  })
  clients.push(made)
  return made
}

describe('soft limits', () => {
  it('a numeric limit: hard by default; soft allows past it as overage; the ceiling denies whole', async () => {
    const verifier = createEntitlementVerifier({ keys: issuer.jwks, issuer: ISSUER, audience: 'app' })
    const hard = await verifier.verify(await seatsAndCalls({}))
    expect(decide(hard, 'seats', { usage: 10, amount: 1 }, Date.now())).toMatchObject({
      allowed: false,
      reason: 'limit_exceeded',
    })
    const soft = await verifier.verify(await seatsAndCalls({}, { limit: 10, soft: true, ceiling: 12 }))
    expect(decide(soft, 'seats', { usage: 9, amount: 1 }, Date.now())).toMatchObject({
      allowed: true,
      reason: 'granted',
      overage: undefined,
    })
    expect(decide(soft, 'seats', { usage: 10, amount: 2 }, Date.now())).toMatchObject({
      allowed: true,
      reason: 'overage',
      limit: 10,
      used: 10,
      remaining: 0,
      overage: 2,
    })
    expect(decide(soft, 'seats', { usage: 11, amount: 2 }, Date.now())).toMatchObject({
      allowed: false,
      reason: 'ceiling_reached',
      limit: 10,
      used: 11,
      overage: undefined,
    })
    // With no ceiling, a soft limit has no end.
    const open = await verifier.verify(await seatsAndCalls({}, { limit: 10, soft: true }))
    expect(decide(open, 'seats', { usage: 1000, amount: 1 }, Date.now())).toMatchObject({
      allowed: true,
      overage: 991,
    })
  })

  it('a metered cap in one process: 5 included, 2 as overage, then the ceiling; an amount crossing it counts nothing', async () => {
    const entitlements = client(await seatsAndCalls({ soft: true, ceiling: 7 }))
    await entitlements.load()
    const answers = []
    for (let i = 0; i < 6; i++) {
      const decision = await entitlements.consume('api-calls')
      answers.push([decision.allowed, decision.reason, decision.used, decision.overage])
    }
    expect(answers).toEqual([
      [true, 'granted', 0, undefined],
      [true, 'granted', 1, undefined],
      [true, 'granted', 2, undefined],
      [true, 'granted', 3, undefined],
      [true, 'granted', 4, undefined],
      [true, 'overage', 5, 1],
    ])
    // 6 used: 3 more would cross the ceiling of 7, so none is taken; 1 still fits.
    expect(entitlements.consumeSync('api-calls', { amount: 3 })).toMatchObject({
      allowed: false,
      reason: 'ceiling_reached',
      used: 6,
    })
    expect(entitlements.checkSync('api-calls', { amount: 1 })).toMatchObject({
      allowed: true,
      overage: 2,
      used: 6,
    })
    expect(entitlements.consumeSync('api-calls')).toMatchObject({
      allowed: true,
      reason: 'overage',
      overage: 2,
    })
    expect(entitlements.consumeSync('api-calls')).toMatchObject({ allowed: false, reason: 'ceiling_reached' })
    // The snapshot carries it for a pricing page.
    expect(entitlements.checkSync('api-calls', { amount: 0 })).toMatchObject({
      used: 7,
      limit: 5,
      remaining: 0,
    })
  })

  it('the Express guard lets overage through, marked, and answers the ceiling with 429', async () => {
    const entitlements = client(await seatsAndCalls({ soft: true, ceiling: 6 }))
    const app = express()
    // The app's own authentication names the customer.
    app.use((_req, res, next) => {
      res.locals.customerId = 'acme'
      next()
    })
    app.get('/search', requireEntitlement(entitlements, 'api-calls', { consume: 1 }), (req, res) => {
      res.json({ reason: req.entitlement?.reason, overage: req.entitlement?.overage })
    })
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/search`
      const answers = []
      for (let i = 0; i < 7; i++) {
        const response = await fetch(url)
        answers.push([
          response.status,
          response.headers.get('entitlement-overage'),
          (await response.json()).reason ?? '',
        ])
      }
      expect(answers.slice(4)).toEqual([
        [200, null, 'granted'],
        [200, '1', 'overage'],
        [429, null, ''],
      ])
    } finally {
      server.close()
    }
  })

  it('a hard cap stays hard: usage_cap_reached at the limit', async () => {
    const entitlements = client(await seatsAndCalls({}))
    await entitlements.load()
    for (let i = 0; i < 5; i++) expect((await entitlements.consume('api-calls')).allowed).toBe(true)
    expect(await entitlements.consume('api-calls')).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
    })
  })

  it('two instances on one Redis: the fleet passes the limit as overage and stops at the ceiling, exactly', async () => {
    const token = await seatsAndCalls({ soft: true, ceiling: 8 })
    const a = client(token, { prefix: 'soft1:' })
    const b = client(token, { prefix: 'soft1:' })
    await Promise.all([a.load(), b.load()])
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? a : b).consume('api-calls')),
    )
    const allowed = answers.filter((answer) => answer.allowed)
    expect(allowed).toHaveLength(8)
    expect(
      allowed
        .filter((answer) => answer.reason === 'overage')
        .map((answer) => answer.overage)
        .sort(),
    ).toEqual([1, 2, 3])
    expect(answers.filter((answer) => !answer.allowed).map((answer) => answer.reason)).toEqual([
      'ceiling_reached',
      'ceiling_reached',
      'ceiling_reached',
      'ceiling_reached',
    ])
  })

  it('a token whose soft limit does not hold together is refused when signed', async () => {
    for (const seats of [
      { limit: 10, ceiling: 12 },
      { limit: 10, soft: true, ceiling: 9 },
      { soft: true },
      { limit: 10, thresholds: [100, 80] },
      { limit: 10, thresholds: [0] },
    ])
      await expect(seatsAndCalls({}, seats), JSON.stringify(seats)).rejects.toThrow()
    await expect(seatsAndCalls({ ceiling: 9 })).rejects.toThrow()
  })

  it('thresholds fire once per window, ascending on a jump, not while hovering, not after a restart, again next window', async () => {
    const clock = { now: Date.now() }
    const token = await issuer.issue(
      {
        plan: { id: 'team' },
        features: {
          'api-calls': {
            cap: {
              limit: 10,
              period: 'month',
              used: 0,
              resetsAt: Math.floor(clock.now / 1000) + 86_400,
              soft: true,
              thresholds: [50, 80, 100, 150],
            },
          },
        },
      },
      { subject: 'acme', expiresInSec: 365 * 86_400 },
    )
    const dir = mkdtempSync(join(tmpdir(), 'entitle-thresholds-'))
    const start = () => {
      const made = createEntitlements({
        metering,
        token,
        keys: issuer.jwks,
        issuer: ISSUER,
        audience: 'app',
        storage: createFileStorage(dir),
        platform: { now: () => clock.now },
      })
      clients.push(made)
      const fired: Array<[number, number]> = []
      made.on('threshold', (event: ThresholdEvent) => fired.push([event.threshold, event.used]))
      return { made, fired }
    }
    const first = start()
    await first.made.load()
    for (let i = 0; i < 4; i++) await first.made.consume('api-calls')
    expect(first.fired).toEqual([])
    // One step from 4 to 9 crosses 50 and 80: both, in order.
    await first.made.consume('api-calls', { amount: 5 })
    await expect
      .poll(() => first.fired)
      .toEqual([
        [50, 9],
        [80, 9],
      ])
    await first.made.consume('api-calls')
    await first.made.consume('api-calls')
    await expect.poll(() => first.fired.length).toBe(3)
    expect(first.fired[2]).toEqual([100, 10])
    await first.made.close()
    // A restart: what fired stays fired; past 150% fires once.
    const second = start()
    await second.made.load()
    for (let i = 0; i < 5; i++) await second.made.consume('api-calls')
    await expect.poll(() => second.fired).toEqual([[150, 15]])
    await second.made.consume('api-calls')
    // The next window starts again from the first threshold.
    clock.now += 32 * 86_400_000
    for (let i = 0; i < 5; i++) await second.made.consume('api-calls')
    await expect
      .poll(() => second.fired)
      .toEqual([
        [150, 15],
        [50, 5],
      ])
  })

  it('a numeric limit: the usage a check states fires its thresholds once per limit, and again after an upgrade', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'entitle-limit-thresholds-'))
    const start = (token: string) => {
      const made = createEntitlements({
        metering,
        token,
        keys: issuer.jwks,
        issuer: ISSUER,
        audience: 'app',
        storage: createFileStorage(dir),
      })
      clients.push(made)
      const fired: Array<[number, number, number]> = []
      made.on('threshold', (event: ThresholdEvent) => fired.push([event.threshold, event.used, event.limit]))
      return { made, fired }
    }
    const ten = await seatsAndCalls({}, { limit: 10, soft: true, thresholds: [80, 100] })
    const first = start(ten)
    await first.made.load()
    for (const usage of [5, 7, 9, 8, 9, 10, 10, 12]) first.made.checkSync('seats', { usage })
    // Bad input states nothing.
    first.made.checkSync('seats', { usage: -1 })
    first.made.checkSync('seats', { usage: Number.NaN })
    await expect
      .poll(() => first.fired)
      .toEqual([
        [80, 9, 10],
        [100, 10, 10],
      ])
    expect(first.made.checkSync('seats', { usage: 12 })).toMatchObject({ allowed: true, reason: 'overage' })
    await first.made.close()
    // A restart on the same limit fires nothing again; a new limit (an upgrade to 20) is a new line.
    const again = start(ten)
    await again.made.load()
    await again.made.check('seats', { usage: 12 })
    const twenty = start(await seatsAndCalls({}, { limit: 20, soft: true, thresholds: [80, 100] }))
    await twenty.made.load()
    await twenty.made.check('seats', { usage: 17 })
    await expect.poll(() => twenty.fired).toEqual([[80, 17, 20]])
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(again.fired).toEqual([])
  })

  it('two instances on one Redis: each threshold fires once for the whole fleet', async () => {
    const token = await seatsAndCalls({ soft: true, ceiling: 20, thresholds: [50, 100] })
    const a = client(token, { prefix: 'soft2:' })
    const b = client(token, { prefix: 'soft2:' })
    const fired: string[] = []
    a.on('threshold', (event) => fired.push(`a ${event.threshold}`))
    b.on('threshold', (event) => fired.push(`b ${event.threshold}`))
    await Promise.all([a.load(), b.load()])
    for (let i = 0; i < 12; i++) await (i % 2 === 0 ? a : b).consume('api-calls')
    await expect.poll(() => fired.length).toBe(2)
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(fired.map((line) => line.split(' ')[1]).sort()).toEqual(['100', '50'])
  })
})
