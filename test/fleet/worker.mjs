// One instance of an app in the fleet contention test: a child process with its own client on the built package,
// consuming a metered cap through a Redis store shared with the other instances. Reports its counts as JSON.
import { createEntitlements, metering } from '../../dist/index.js'
import { createRedisUsageStore } from '../../dist/redis.js'

const config = JSON.parse(process.argv[2])
// Either supported major of ioredis (6 is installed under the alias ioredis6).
const { Redis } = await import(config.client ?? 'ioredis')
const redis = new Redis(config.redisUrl, {
  maxRetriesPerRequest: 0,
  enableOfflineQueue: false,
  lazyConnect: false,
})
redis.on('error', () => {}) // reconnects on its own; each failed call is a store error the client handles
const client = createEntitlements({
  metering,
  token: config.token,
  keys: config.jwks,
  issuer: config.issuer,
  audience: config.audience,
  usage: { url: config.usageUrl, flushIntervalMs: 100 },
  fleet: { store: createRedisUsageStore(redis, { timeoutMs: 500 }), onStoreError: config.policy },
})
await new Promise((resolve) => redis.once('ready', resolve))
const counts = { allowed: 0, capped: 0, unavailable: 0, other: 0 }
let next = 0
async function lane() {
  while (next < config.attempts) {
    next++
    const decision = await client.consume('api-calls')
    if (decision.allowed) counts.allowed++
    else if (decision.reason === 'usage_cap_reached') counts.capped++
    else if (decision.reason === 'unavailable') counts.unavailable++
    else counts.other++
    if (config.pauseMs) await new Promise((resolve) => setTimeout(resolve, config.pauseMs))
  }
}
await Promise.all(Array.from({ length: config.concurrency }, lane))
const closed = await client.close({ deadlineMs: 10_000 })
redis.disconnect()
process.stdout.write(`${JSON.stringify({ ...counts, usage: closed, stats: client.stats().usage })}\n`)
