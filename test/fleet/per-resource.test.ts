import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  createEntitlements,
  createMemoryUsageStore,
  type EntitlementsClient,
  metering,
} from '../../src/index.js'
import { createRedisUsageStore } from '../../src/redis/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { startRedis } from './redis-server.js'

// Per-resource caps across a fleet: the resource's counter and the account's move together in one Redis script,
// so instances racing for the last unit of a repository (whose account is at its last unit too) allow exactly one.

const ISSUER = 'https://license.per-resource.test'
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
/** 10 builds a month per repository within 20 for the account; the server had counted `used` for each. */
const license = (used: { account: number; api: number }) =>
  issuer.issue(
    {
      plan: { id: 'ci' },
      features: {
        builds: {
          cap: { limit: 20, period: 'month', used: used.account, resetsAt: resetsAt() },
          per: { kind: 'repository', cap: { limit: 10 }, resources: { api: { cap: { used: used.api } } } },
        },
      },
    },
    { subject: 'acme' },
  )

function instance(token: string, prefix: string) {
  const connection = new Redis(redis.url)
  connections.push(connection)
  const made = createEntitlements({
    metering,
    token,
    keys: issuer.jwks,
    issuer: ISSUER,
    audience: 'app',
    fleet: { store: createRedisUsageStore(connection, { prefix }), onStoreError: 'local' },
  })
  clients.push(made)
  return made
}

describe('per-resource caps on a fleet', () => {
  it('two instances racing for the last unit of a repository whose account is at its last unit: exactly one wins', async () => {
    const token = await license({ account: 19, api: 9 })
    const [a, b] = [instance(token, 'race:'), instance(token, 'race:')]
    await Promise.all([a.load(), b.load()])
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        (i % 2 === 0 ? a : b).consume('builds', { resource: 'repository:api' }),
      ),
    )
    expect(answers.filter((answer) => answer.allowed)).toHaveLength(1)
    const denied = answers.filter((answer) => !answer.allowed)
    expect(denied.every((answer) => answer.reason === 'usage_cap_reached')).toBe(true)
    // Both counters exact, in one Cluster hash slot ({acme}).
    const reader = new Redis(redis.url)
    connections.push(reader)
    const keys = (await reader.keys('race:*')).sort()
    expect(keys).toHaveLength(2)
    expect(keys.every((key) => key.startsWith('race:{acme}:'))).toBe(true)
    const counts = Object.fromEntries(
      await Promise.all(keys.map(async (key) => [key.split(':')[2], Number(await reader.get(key))])),
    )
    // The account's counter, and the repository's (named by metric and resource, encoded).
    expect(counts).toEqual({ builds: 20, [encodeURIComponent('builds\u0000repository:api')]: 10 })
  })

  it('racing for the last unit of a repository while the account has room: still exactly one', async () => {
    const token = await license({ account: 10, api: 9 })
    const [a, b] = [instance(token, 'room:'), instance(token, 'room:')]
    await Promise.all([a.load(), b.load()])
    const answers = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        (i % 2 === 0 ? a : b).consume('builds', { resource: 'repository:api' }),
      ),
    )
    expect(answers.filter((answer) => answer.allowed)).toHaveLength(1)
    expect(answers.filter((answer) => !answer.allowed)[0]).toMatchObject({
      reason: 'usage_cap_reached',
      resource: { deniedBy: 'resource', own: { used: 10, limit: 10 }, account: { used: 11 } },
    })
  })

  it('the account denies a fresh repository whole, counting nothing at either level, on every instance', async () => {
    const token = await license({ account: 15, api: 0 })
    const [a, b] = [instance(token, 'fresh:'), instance(token, 'fresh:')]
    await Promise.all([a.load(), b.load()])
    expect(await a.consume('builds', { resource: 'repository:new', amount: 4 })).toMatchObject({
      allowed: true,
    })
    expect(await b.consume('builds', { resource: 'repository:web', amount: 2 })).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      resource: { deniedBy: 'account', own: { used: 0 }, account: { used: 19, limit: 20 } },
    })
    // The other instance sees the fleet's counts: new at 4 of 10, the account at 19.
    expect(await b.consume('builds', { resource: 'repository:new' })).toMatchObject({
      allowed: true,
      resource: { own: { used: 4 }, account: { used: 19 } },
    })
    const reader = new Redis(redis.url)
    connections.push(reader)
    const web = await reader.keys('fresh:*web*')
    expect(web).toEqual([])
  })

  it('Redis down: denied unavailable (no shared count of the resource to fall back on), and back after', async () => {
    let down = false
    const inner = createMemoryUsageStore()
    const store = {
      consume: inner.consume,
      consumeAll: async (requests: Parameters<NonNullable<typeof inner.consumeAll>>[0]) => {
        if (down) throw new Error('ECONNREFUSED')
        return inner.consumeAll!(requests)
      },
    }
    const made = createEntitlements({
      metering,
      token: await license({ account: 0, api: 0 }),
      keys: issuer.jwks,
      issuer: ISSUER,
      audience: 'app',
      fleet: { store, onStoreError: 'local' },
    })
    clients.push(made)
    const errors: string[] = []
    made.on('error', ({ error }) => errors.push(error.code))
    await made.load()
    expect((await made.consume('builds', { resource: 'repository:api' })).allowed).toBe(true)
    down = true
    expect(await made.consume('builds', { resource: 'repository:api' })).toMatchObject({
      allowed: false,
      reason: 'unavailable',
    })
    expect(errors).toContain('store_unavailable')
    down = false
    expect(await made.consume('builds', { resource: 'repository:api' })).toMatchObject({
      allowed: true,
      resource: { own: { used: 1 } },
    })
  })
})
