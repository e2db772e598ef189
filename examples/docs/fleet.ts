// A cap that holds across a fleet of instances, on Redis, against the reference license server (`npm run server`).
import { createEntitlements, metering } from 'entitle'
import { createRedisUsageStore } from 'entitle/redis'
import { Redis } from 'ioredis'

const LICENSE_SERVER = process.env.LICENSE_SERVER ?? 'http://127.0.0.1:8787'

// maxRetriesPerRequest and the offline queue off: a call fails at once while Redis is away, instead of waiting.
export const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', {
  maxRetriesPerRequest: 0,
  enableOfflineQueue: false,
})

export const entitlements = createEntitlements({
  server: { url: LICENSE_SERVER, apiKey: process.env.ENTITLE_SERVICE_KEY },
  keys: new URL('/.well-known/jwks.json', LICENSE_SERVER),
  issuer: LICENSE_SERVER,
  audience: 'acme-editor',
  fleet: { store: createRedisUsageStore(redis, { timeoutMs: 250 }), onStoreError: 'closed' },
  metering,
})

// Check the fleet-wide cap and use one unit in one atomic step; the unit is also reported to the license server.
export async function callApi(customerId: string): Promise<boolean> {
  const decision = await entitlements.consume('api-calls', { subject: customerId, amount: 1 })
  return decision.allowed
}

/** Closes the client (sending its usage) and the Redis connection. */
export async function shutdown(): Promise<void> {
  await entitlements.close()
  redis.disconnect()
}

// Run as a script: once Redis is connected (with no offline queue, a call before that fails at once), one call,
// then shut down (a server would call shutdown() on SIGTERM).
if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve))
console.log(await callApi('globex'))
await shutdown()
