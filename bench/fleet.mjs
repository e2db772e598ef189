// Fleet caps: consume() through a Redis store (check and count, atomically, one Lua script per call) beside a bare
// INCRBY on the same redis-server, both with 32 calls in flight, as an app serving concurrent requests would.
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'
import { createEntitlements, createRedisUsageStore, createTestIssuer, metering } from './dist.mjs'
import { compare } from './harness.mjs'

async function freePort() {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Returns the row, or undefined when no redis-server is installed (the bench says so instead of failing). */
export async function fleetRow() {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'entitle-bench-redis-'))
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  )
  const ready = await new Promise((resolve) => {
    child.once('error', () => resolve(false))
    child.stdout.on('data', (chunk) => String(chunk).includes('Ready to accept') && resolve(true))
  })
  if (!ready) return undefined
  const redis = new Redis(`redis://127.0.0.1:${port}`)
  try {
    const issuer = await createTestIssuer({ issuer: 'https://license.bench', audience: 'bench' })
    const resetsAt = Math.floor(Date.now() / 1000) + 10 * 86_400
    const token = await issuer.issue({
      plan: { id: 'metered' },
      features: { 'api-calls': { cap: { limit: 1e12, period: 'month', used: 0, resetsAt } } },
    })
    const client = createEntitlements({
      metering,
      token,
      keys: issuer.jwks,
      issuer: 'https://license.bench',
      audience: 'bench',
      fleet: { store: createRedisUsageStore(redis, { timeoutMs: 5000 }) },
    })
    await client.load()
    let denied = 0
    const ours = async () => {
      if (!(await client.consume('api-calls')).allowed) denied++
    }
    const bare = () => redis.incrby('bench:bare', 1)
    const row = await compare('consume() on Redis, 32 in flight vs INCRBY', ours, bare, {
      inFlight: 32,
      rounds: 5,
    })
    if (denied > 0) throw new Error(`${denied} consumes were denied`)
    await client.close()
    return row
  } finally {
    redis.disconnect()
    child.kill('SIGKILL')
  }
}
