import { createHash } from 'node:crypto'
import { DEFAULTS } from '../core/defaults.js'
import { MAX_TIMER_MS } from '../platform/timers.js'
import type { CreditSpendRequest, UsageCounterRequest, UsageCounterStore } from '../usage/counter-store.js'

/**
 * The part of a Redis client the store uses: `evalsha` and `eval`, as `ioredis` has them (node-redis users can
 * pass a small wrapper). The client's own reconnection brings the store back after an outage.
 */
export interface RedisScripting {
  /** Runs a loaded script by its SHA-1; fails with `NOSCRIPT` when the server does not have it. */
  evalsha(sha: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
  /** Runs (and loads) a script. */
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>
}

/** Options of {@link createRedisUsageStore}. */
export interface RedisUsageStoreOptions {
  /** Prefix of every counter key. Default `entitle:usage:`. */
  prefix?: string
  /** A call slower than this fails (and `consume()` follows `fleet.onStoreError`). Default 250 ms. */
  timeoutMs?: number
}

/*
 * Check-and-consume in one step on the Redis server: scripts run atomically, so no two instances can both take the
 * last unit. The counter never counts less than the baseline (the server's snapshot), and expires with its window.
 * Numbers go back as strings: Redis truncates Lua numbers to integers in replies.
 */
const CONSUME = `
local current = tonumber(redis.call('GET', KEYS[1]))
local baseline = tonumber(ARGV[3])
if current == nil or current < baseline then current = baseline end
local amount = tonumber(ARGV[1])
if ARGV[5] ~= '1' and current + amount > tonumber(ARGV[2]) then return {0, tostring(current)} end
current = current + amount
if ARGV[4] ~= '0' then
  redis.call('SET', KEYS[1], tostring(current), 'PXAT', ARGV[4])
else
  redis.call('SET', KEYS[1], tostring(current))
end
return {1, tostring(current)}
`
const CONSUME_SHA = createHash('sha1').update(CONSUME).digest('hex')

/**
 * The same over several counters: every counter is checked before any is changed, so either each amount is added
 * or none is. ARGV holds five values a key: amount, limit, baseline, expiry, force.
 */
const CONSUME_ALL = `
local counts = {}
local fits = true
for i = 1, #KEYS do
  local at = (i - 1) * 5
  local current = tonumber(redis.call('GET', KEYS[i]))
  local baseline = tonumber(ARGV[at + 3])
  if current == nil or current < baseline then current = baseline end
  counts[i] = current
  if ARGV[at + 5] ~= '1' and current + tonumber(ARGV[at + 1]) > tonumber(ARGV[at + 2]) then fits = false end
end
local reply = {fits and 1 or 0}
for i = 1, #KEYS do
  local at = (i - 1) * 5
  local count = counts[i]
  if fits then
    count = count + tonumber(ARGV[at + 1])
    if ARGV[at + 4] ~= '0' then
      redis.call('SET', KEYS[i], tostring(count), 'PXAT', ARGV[at + 4])
    else
      redis.call('SET', KEYS[i], tostring(count))
    end
  end
  reply[i + 1] = tostring(count)
end
return reply
`
const CONSUME_ALL_SHA = createHash('sha1').update(CONSUME_ALL).digest('hex')

/**
 * Credits: spend or hold in one step. KEYS: the count, the holds' ends (a sorted set scored by end), the holds'
 * amounts (a hash). ARGV: amount, limit, baseline, hold id ('' for a spend), hold length in ms, settle id ('' for
 * none), force. Time is Redis's own, so instances whose clocks disagree agree on a hold's end. Holds past their end
 * are dropped first: a hold an instance never ended (it crashed) returns by itself.
 */
const SPEND_CREDITS = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local ended = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(ended) do redis.call('HDEL', KEYS[3], id) end
if #ended > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now) end
if ARGV[6] ~= '' then
  redis.call('ZREM', KEYS[2], ARGV[6])
  redis.call('HDEL', KEYS[3], ARGV[6])
end
local held = 0
for _, value in ipairs(redis.call('HVALS', KEYS[3])) do held = held + tonumber(value) end
local spent = tonumber(redis.call('GET', KEYS[1]))
local baseline = tonumber(ARGV[3])
if spent == nil or spent < baseline then spent = baseline end
local amount = tonumber(ARGV[1])
if ARGV[7] ~= '1' and spent + held + amount > tonumber(ARGV[2]) then
  return {0, tostring(spent), tostring(held)}
end
if ARGV[4] ~= '' then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[4])
  redis.call('HSET', KEYS[3], ARGV[4], tostring(amount))
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[2], last[2])
  redis.call('PEXPIREAT', KEYS[3], last[2])
  return {1, tostring(spent), tostring(held + amount)}
end
spent = spent + amount
redis.call('SET', KEYS[1], tostring(spent))
return {1, tostring(spent), tostring(held)}
`
const SPEND_CREDITS_SHA = createHash('sha1').update(SPEND_CREDITS).digest('hex')

/**
 * A {@link UsageCounterStore} on Redis, shared by every instance of an app, so `consume()` holds a metered cap
 * across the fleet. Keys are `{prefix}{customer}:{metric}:{window end}`, each expiring at its window's end.
 *
 * @example
 * ```ts
 * import Redis from 'ioredis'
 * import { createRedisUsageStore } from 'entitle/redis'
 * const redis = new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: 1, enableOfflineQueue: false })
 * const client = createEntitlements({ ...options, fleet: { store: createRedisUsageStore(redis) } })
 * ```
 */
export function createRedisUsageStore(
  redis: RedisScripting,
  options: RedisUsageStoreOptions = {},
): UsageCounterStore {
  if (typeof redis?.evalsha !== 'function' || typeof redis.eval !== 'function')
    throw new TypeError('createRedisUsageStore needs a Redis client with evalsha and eval (ioredis)')
  const prefix = options.prefix ?? DEFAULTS.redis.prefix
  const timeoutMs = options.timeoutMs ?? DEFAULTS.redis.timeoutMs
  // A timer past 2^31-1 ms fires at once: every consume() would time out.
  if (!(Number.isInteger(timeoutMs) && timeoutMs >= 1 && timeoutMs <= MAX_TIMER_MS))
    throw new TypeError(`timeoutMs must be a whole number of milliseconds from 1 to ${MAX_TIMER_MS}`)

  async function run(
    script: string,
    sha: string,
    keys: number,
    args: Array<string | number>,
  ): Promise<unknown> {
    try {
      return await redis.evalsha(sha, keys, ...args)
    } catch (error) {
      if (!String((error as Error)?.message).includes('NOSCRIPT')) throw error
      return redis.eval(script, keys, ...args)
    }
  }

  /** `work`, or a failure after `timeoutMs`: a slow Redis follows the client's `onStoreError`. */
  async function withinTimeout<T>(work: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer within ${timeoutMs} ms`)), timeoutMs)
      timer.unref?.()
    })
    try {
      return await Promise.race([work, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  const argsOf = (request: UsageCounterRequest) => [
    String(request.amount),
    String(request.limit),
    String(request.baseline),
    request.expiresAt === undefined ? '0' : String(request.expiresAt),
    request.force ? '1' : '0',
  ]

  return {
    async claim(key: string, expiresAt: number | undefined) {
      // SET NX: the first instance to claim the key gets 'OK', every other nil. It lasts as long as its window.
      const reply = await redis.eval(
        "if ARGV[1] == '0' then return redis.call('SET', KEYS[1], '1', 'NX') end return redis.call('SET', KEYS[1], '1', 'NX', 'PXAT', ARGV[1])",
        1,
        `${prefix}claim:${key}`,
        expiresAt === undefined ? '0' : String(Math.ceil(expiresAt)),
      )
      return reply === 'OK'
    },
    async consume(request: UsageCounterRequest) {
      const args = [prefix + request.key, ...argsOf(request)]
      const reply = (await withinTimeout(run(CONSUME, CONSUME_SHA, 1, args))) as [number | string, string]
      return { allowed: Number(reply[0]) === 1, used: Number(reply[1]) }
    },
    async consumeAll(requests: readonly UsageCounterRequest[]) {
      const args = [...requests.map((request) => prefix + request.key), ...requests.flatMap(argsOf)]
      const reply = (await withinTimeout(run(CONSUME_ALL, CONSUME_ALL_SHA, requests.length, args))) as Array<
        number | string
      >
      return { allowed: Number(reply[0]) === 1, used: reply.slice(1).map(Number) }
    },
    async spendCredits(request: CreditSpendRequest) {
      // One hash slot for the three keys (Redis Cluster): the count's key, braced, tags them all.
      const base = `${prefix}{${request.key}}`
      const args = [
        base,
        `${base}:hold-ends`,
        `${base}:holds`,
        String(request.amount),
        String(request.limit),
        String(request.baseline),
        request.hold?.id ?? '',
        request.hold === undefined ? '0' : String(Math.ceil(request.hold.ttlMs)),
        request.settle ?? '',
        request.force ? '1' : '0',
      ]
      const reply = (await withinTimeout(run(SPEND_CREDITS, SPEND_CREDITS_SHA, 3, args))) as string[]
      return { allowed: Number(reply[0]) === 1, spent: Number(reply[1]), held: Number(reply[2]) }
    },
  }
}
