import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createEntitlements, type EntitlementsClient, metering } from '../../src/index.js'
import { createRedisUsageStore } from '../../src/redis/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { startRedis } from './redis-server.js'

// Credits across a fleet: reservations and spends go through one Redis script that sees every instance's live
// holds, so instances racing for the same balance can never spend it twice.

const ISSUER = 'https://license.credits.test'
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

/** 500 credits; an LLM call is priced per 1 000 tokens (1 credit each), a completion costs 5. */
const license = (remaining = 500, spent = 0) =>
  issuer.issue(
    {
      plan: { id: 'ai' },
      features: { 'ai-completion': true },
      credits: {
        'ai-credits': {
          grants: [{ id: 'pack', remaining }],
          asOf: Date.now() / 1000,
          spent,
          costs: { 'ai-completion': { amount: 5 }, tokens: { amount: 1, per: 1000 } },
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
    fleet: { store: createRedisUsageStore(connection, { prefix }) },
  })
  clients.push(made)
  return made
}

describe('credits on a fleet', () => {
  it('20 concurrent reservations of 75 against 500, across two instances on one Redis: exactly 6 succeed', async () => {
    const token = await license()
    const [a, b] = [instance(token, 'race:'), instance(token, 'race:')]
    await Promise.all([a.load(), b.load()])
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).reserve('tokens', { amount: 75_000 })),
    )
    expect(results.filter((result) => result.reserved)).toHaveLength(6)
    const refused = results.filter((result) => !result.reserved)
    expect(refused.every((result) => result.decision.reason === 'credits_exhausted')).toBe(true)
    // A consume on either instance sees the other's holds: 50 are left, so 10 completions and no more.
    const consumes = await Promise.all(
      Array.from({ length: 14 }, (_, i) => (i % 2 === 0 ? b : a).consume('ai-completion')),
    )
    expect(consumes.filter((decision) => decision.allowed)).toHaveLength(10)
  })

  it('commit less than reserved frees the rest for the fleet; release frees all; a crashed instance’s hold returns by itself', async () => {
    const token = await license(100)
    const [a, b] = [instance(token, 'settle:'), instance(token, 'settle:')]
    await Promise.all([a.load(), b.load()])
    const big = await a.reserve('tokens', { amount: 80_000 })
    expect(big.reserved).toBe(true)
    expect((await b.reserve('tokens', { amount: 30_000 })).reserved).toBe(false)
    await big.hold!.commit(50_000)
    // 50 spent, nothing held: 50 left for anyone.
    const next = await b.reserve('tokens', { amount: 50_000 })
    expect(next.reserved).toBe(true)
    expect((await a.reserve('tokens', { amount: 1 })).reserved).toBe(false)
    await next.hold!.release()
    expect((await a.reserve('tokens', { amount: 50_000 })).reserved).toBe(true)
    // That hold is never ended (its instance "crashed"): after its ttl the credits return to the fleet.
    const [c] = [instance(await license(100), 'expire:')]
    await c.load()
    expect((await c.reserve('tokens', { amount: 100_000, ttlMs: 1000 })).reserved).toBe(true)
    expect((await c.reserve('tokens', { amount: 1 })).reserved).toBe(false)
    await new Promise((resolve) => setTimeout(resolve, 1100))
    expect((await c.reserve('tokens', { amount: 100_000 })).reserved).toBe(true)
    const reader = new Redis(redis.url)
    connections.push(reader)
    // The three keys of one balance share one Cluster hash slot.
    const keys = (await reader.keys('settle:*')).sort()
    expect(keys.every((key) => key.startsWith('settle:{acme:ai-credits:'))).toBe(true)
    expect(Number(await reader.get(keys.find((key) => key.endsWith('}'))!))).toBe(50)
  })

  it('a new snapshot (more spent, a top-up) moves the fleet count by the server’s numbers, not twice', async () => {
    const [a] = [instance(await license(100, 1000), 'snap:')]
    await a.load()
    for (let i = 0; i < 20; i++) expect((await a.consume('ai-completion')).allowed).toBe(true)
    expect((await a.consume('ai-completion')).reason).toBe('credits_exhausted')
    // The server counted those 100 (spent 1 100) and the customer bought 50 more: a new token says so.
    const [b] = [instance(await license(50, 1100), 'snap:')]
    await b.load()
    const after = await Promise.all(Array.from({ length: 12 }, () => b.consume('ai-completion')))
    expect(after.filter((decision) => decision.allowed)).toHaveLength(10)
  })
})
