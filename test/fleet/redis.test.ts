import { execFile } from 'node:child_process'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Redis from 'ioredis'
import { Redis as Redis6 } from 'ioredis6'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createEntitlements, type EntitlementsClient, metering } from '../../src/index.js'
import { createRedisUsageStore } from '../../src/redis/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { startRedis } from './redis-server.js'

const ISSUER = 'https://license.fleet.test'
const AUDIENCE = 'fleet-app'

/** A usage endpoint that counts each line id once: which instance reported a unit must not matter. */
async function ingest() {
  const seen = new Set<string>()
  let total = 0
  const server = createServer(async (req, res) => {
    let text = ''
    for await (const chunk of req) text += chunk
    for (const line of (JSON.parse(text) as { lines: Array<{ id: string; amount: number }> }).lines) {
      if (seen.has(line.id)) continue
      seen.add(line.id)
      total += line.amount
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ at: Date.now() }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get total() {
      return total
    },
    close: () => new Promise((resolve) => server.close(resolve)),
  }
}

let issuer: Awaited<ReturnType<typeof createTestIssuer>>
beforeAll(async () => {
  issuer = await createTestIssuer({ issuer: ISSUER, audience: AUDIENCE })
})

async function capToken(limit: number, used = 0, subject = 'acme') {
  const resetsAt = Math.floor(Date.now() / 1000) + 10 * 86_400
  return issuer.issue(
    { plan: { id: 'team' }, features: { 'api-calls': { cap: { limit, period: 'month', used, resetsAt } } } },
    { subject, expiresInSec: 3600 },
  )
}

function runWorker(
  config: Record<string, unknown>,
): Promise<{ allowed: number; capped: number; unavailable: number; other: number }> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['test/fleet/worker.mjs', JSON.stringify(config)],
      { timeout: 90_000 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`worker failed: ${error.message}\n${stderr}`))
        else resolve(JSON.parse(stdout.trim().split('\n').at(-1)!))
      },
    )
  })
}

// The peer range is ioredis ^5 || ^6: the store runs on both majors (6 is installed as `ioredis6`).
describe.each([
  ['ioredis 5', (url: string) => new Redis(url)],
  ['ioredis 6', (url: string) => new Redis6(url) as unknown as Redis],
])('entitle/redis: the store on a real redis-server, %s', (_name, connect) => {
  let redis: Awaited<ReturnType<typeof startRedis>>
  let connection: Redis
  beforeAll(async () => {
    redis = await startRedis()
    connection = connect(redis.url)
  })
  afterAll(async () => {
    connection.disconnect()
    await redis.stop()
  })

  it('consumes up to the limit atomically, from the baseline, expiring with the window', async () => {
    const store = createRedisUsageStore(connection, { prefix: 't1:' })
    const expiresAt = Date.now() + 60_000
    const step = (amount: number, extra: { force?: boolean; baseline?: number } = {}) =>
      store.consume({
        key: 'acme:api:1',
        amount,
        limit: 10,
        baseline: extra.baseline ?? 4,
        expiresAt,
        force: extra.force,
      })
    expect(await step(5)).toEqual({ allowed: true, used: 9 })
    expect(await step(2)).toEqual({ allowed: false, used: 9 })
    expect(await step(1)).toEqual({ allowed: true, used: 10 })
    expect(await step(3, { force: true })).toEqual({ allowed: true, used: 13 })
    // A newer snapshot above the counter raises it: usage the fleet did not see (another app) still counts.
    expect(await store.consume({ key: 'acme:api:2', amount: 1, limit: 10, baseline: 0, expiresAt })).toEqual({
      allowed: true,
      used: 1,
    })
    expect(await store.consume({ key: 'acme:api:2', amount: 1, limit: 10, baseline: 6, expiresAt })).toEqual({
      allowed: true,
      used: 7,
    })
    const ttl = await connection.pttl('t1:acme:api:1')
    expect(ttl).toBeGreaterThan(50_000)
    expect(ttl).toBeLessThanOrEqual(60_000)
    expect(await connection.get('t1:acme:api:1')).toBe('13')
  })

  it('loads its script again after the server forgot it (SCRIPT FLUSH, a restart)', async () => {
    const store = createRedisUsageStore(connection, { prefix: 't2:' })
    await store.consume({ key: 'k', amount: 1, limit: 5, baseline: 0, expiresAt: undefined })
    await connection.script('FLUSH')
    expect(await store.consume({ key: 'k', amount: 1, limit: 5, baseline: 0, expiresAt: undefined })).toEqual(
      { allowed: true, used: 2 },
    )
    expect(await connection.pttl('t2:k')).toBe(-1)
  })

  it('two clients in one process share one cap through it', async () => {
    const token = await capToken(10, 2)
    const make = (): EntitlementsClient =>
      createEntitlements({
        metering,
        token,
        keys: issuer.jwks,
        issuer: ISSUER,
        audience: AUDIENCE,
        fleet: { store: createRedisUsageStore(connection, { prefix: 't3:' }) },
      })
    const [a, b] = [make(), make()]
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).consume('api-calls')),
    )
    expect(results.filter((d) => d.allowed)).toHaveLength(8)
    const denied = results.find((d) => !d.allowed)!
    expect(denied).toMatchObject({ reason: 'usage_cap_reached', limit: 10, used: 10, remaining: 0 })
    expect(results.find((d) => d.allowed)).toMatchObject({ limit: 10 })
    await Promise.all([a.close(), b.close()])
  })
})

/** Four app processes, 4 000 consume() calls each, against one cap of 10 000 on the Redis at `redisUrl`. */
async function fourInstances(
  redisUrl: string,
  usageUrl: string,
  lanes: { concurrency: number; pauseMs?: number; client?: 'ioredis' | 'ioredis6' },
) {
  const config = {
    token: await capToken(10_000),
    jwks: issuer.jwks,
    issuer: ISSUER,
    audience: AUDIENCE,
    redisUrl,
    usageUrl,
    attempts: 4000,
    policy: 'closed',
    ...lanes,
  }
  return Promise.all(Array.from({ length: 4 }, () => runWorker(config)))
}

describe('contention: four processes against one cap', () => {
  it('allows exactly 10 000 of 16 000 attempts, and the license server hears of exactly 10 000', {
    timeout: 120_000,
  }, async () => {
    const redis = await startRedis()
    const usage = await ingest()
    try {
      const results = await fourInstances(redis.url, usage.url, { concurrency: 32 })
      const allowed = results.reduce((sum, r) => sum + r.allowed, 0)
      expect(allowed).toBe(10_000)
      expect(results.reduce((sum, r) => sum + r.capped, 0)).toBe(6000)
      expect(results.every((r) => r.allowed > 0)).toBe(true)
      const check = new Redis(redis.url)
      const keys = await check.keys('entitle:usage:*')
      expect(await check.get(keys[0]!)).toBe('10000')
      check.disconnect()
      expect(usage.total).toBe(10_000)
    } finally {
      await redis.stop()
      await usage.close()
    }
  })

  it('with Redis killed and restarted mid-run: never over the cap, and every allowed unit reported once', {
    timeout: 120_000,
  }, async () => {
    const redis = await startRedis({ durable: true })
    const usage = await ingest()
    try {
      // The instances run ioredis 6 here, ioredis 5 in the test above: both majors under contention.
      const running = fourInstances(redis.url, usage.url, { concurrency: 4, pauseMs: 2, client: 'ioredis6' })
      // Kill it once the instances are under way (a fifth of the cap taken, however slow the machine), bring it
      // back 300 ms later.
      const watcher = new Redis(redis.url)
      const taken = async () => {
        const [key] = await watcher.keys('entitle:usage:*')
        return key === undefined ? 0 : Number(await watcher.get(key))
      }
      await expect.poll(taken, { timeout: 60_000, interval: 20 }).toBeGreaterThanOrEqual(2000)
      watcher.disconnect()
      await redis.restart(300)
      const results = await running
      const allowed = results.reduce((sum, r) => sum + r.allowed, 0)
      const unavailable = results.reduce((sum, r) => sum + r.unavailable, 0)
      expect(unavailable).toBeGreaterThan(0)
      expect(allowed).toBeLessThanOrEqual(10_000)
      // The outage cost at most the calls answered 'unavailable' and those whose reply was lost with the server.
      expect(allowed).toBeGreaterThan(10_000 - unavailable - 200)
      expect(usage.total).toBe(allowed)
      const check = new Redis(redis.url)
      const counted = Number(await check.get((await check.keys('entitle:usage:*'))[0]!))
      check.disconnect()
      // Redis may count a unit whose reply was lost in the crash: never fewer than were allowed.
      expect(counted).toBeGreaterThanOrEqual(allowed)
      expect(counted).toBeLessThanOrEqual(10_000)
      console.log(
        `fleet restart: ${allowed} allowed, ${unavailable} unavailable during the outage, Redis counted ${counted}`,
      )
    } finally {
      await redis.stop()
      await usage.close()
    }
  })
})
