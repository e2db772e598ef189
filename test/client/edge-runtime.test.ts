import { afterEach, describe, expect, it } from 'vitest'
import { createEntitlements, metering } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'

// Cloudflare Workers refuse, outside a request (at module scope, where a Worker keeps what it reuses), to set a
// timeout, to make random values and to do I/O: "Disallowed operation called within global scope". A client made
// there must do none of them until it is first used. This test makes each of them throw while the client is made,
// as workerd does, then uses the client as a request would.

const forbidden: string[] = []
let inGlobalScope = false
const realRandom = Math.random
const realGetRandomValues = crypto.getRandomValues.bind(crypto)
const realRandomUUID = crypto.randomUUID.bind(crypto)

function forbid<T extends (...args: never[]) => unknown>(name: string, real: T): T {
  return ((...args: never[]) => {
    if (inGlobalScope) {
      forbidden.push(name)
      throw new Error(`Disallowed operation called within global scope: ${name}`)
    }
    return real(...args)
  }) as T
}

afterEach(() => {
  Math.random = realRandom
  crypto.getRandomValues = realGetRandomValues
  crypto.randomUUID = realRandomUUID
  inGlobalScope = false
  forbidden.length = 0
})

describe('a client in an edge runtime, as a Worker runs it', () => {
  it('sets no timer, makes no random value and does no I/O until it is used', async () => {
    const issuer = await createTestIssuer()
    const token = await issuer.issue(
      { features: { export: true, 'api-calls': { cap: { limit: 5, period: 'total', used: 0 } } } },
      { subject: 'acme' },
    )
    const calls: string[] = []
    const platform = {
      setTimeout: forbid('setTimeout', (fn: () => void, ms: number) => setTimeout(fn, ms)),
      clearTimeout: (id: unknown) => clearTimeout(id as ReturnType<typeof setTimeout>),
      fetch: forbid('fetch', async (input: RequestInfo | URL) => {
        calls.push(String(input))
        return String(input).endsWith('/v1/usage')
          ? Response.json({ accepted: 1, rejected: [], at: Date.now() })
          : new Response(token)
      }),
      random: forbid('random', () => realRandom()),
    }
    Math.random = forbid('Math.random', realRandom)
    crypto.getRandomValues = forbid('crypto.getRandomValues', realGetRandomValues)
    crypto.randomUUID = forbid('crypto.randomUUID', realRandomUUID)
    inGlobalScope = true
    const client = createEntitlements({
      metering,
      server: { url: 'https://license.edge.test', events: true },
      keys: issuer.jwks,
      issuer: issuer.issuer,
      audience: issuer.audience,
      usage: { flushIntervalMs: 1000 },
      platform,
    })
    // Whatever a constructor queued runs before the first request, still in global scope.
    await new Promise((resolve) => setTimeout(resolve, 20))
    inGlobalScope = false
    expect(forbidden).toEqual([])
    expect(calls).toEqual([])
    // The first request: everything starts here.
    expect(await client.check('export', { subject: 'acme' })).toMatchObject({ allowed: true })
    client.record('api-calls', 1, { subject: 'acme' })
    expect(await client.flush()).toMatchObject({ sent: 1 })
    await client.close({ deadlineMs: 100 })
  })

  it('renews a token whose timer never fired at the first check after it was due, through waitUntil', async () => {
    // A Worker's timers end with the request that set them: here they never fire at all.
    let now = Date.UTC(2026, 11, 3, 12)
    const issuer = await createTestIssuer({ now: () => now })
    const fetched: string[] = []
    const handedOver: Promise<unknown>[] = []
    const client = createEntitlements({
      metering,
      server: { url: 'https://license.edge.test', revocationIntervalMs: 0 },
      keys: issuer.jwks,
      issuer: issuer.issuer,
      audience: issuer.audience,
      background: 'requests',
      platform: {
        now: () => now,
        setTimeout: () => 0,
        clearTimeout: () => {},
        fetch: async (input) => {
          if (!String(input).includes('/v1/entitlements/')) return Response.json({ revoked: [] })
          fetched.push(String(now))
          return new Response(await issuer.issue({ features: { export: true } }, { subject: 'acme' }))
        },
        waitUntil: (promise) => handedOver.push(promise),
      },
    })
    const first = await client.check('export', { subject: 'acme' })
    expect(first).toMatchObject({ allowed: true, source: 'fresh' })
    const firstIssued = client.entitlements('acme')!.issuedAt
    // 55 minutes on (a one-hour token is due for renewal at 48 to 54): the next request renews it.
    now += 55 * 60_000
    expect(client.checkSync('export', { subject: 'acme' })).toMatchObject({ allowed: true, source: 'cache' })
    await Promise.all(handedOver)
    expect(fetched).toHaveLength(2)
    expect(client.entitlements('acme')!.issuedAt).toBe(firstIssued + 55 * 60_000)
    // Past the first token's end, answers come from the renewed one, not a stale one.
    now += 10 * 60_000
    const later = client.checkSync('export', { subject: 'acme' })
    expect(later.allowed).toBe(true)
    expect(later.source).not.toBe('stale')
    await client.close({ deadlineMs: 0 })
  })
})
