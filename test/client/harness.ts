import { delay, HttpResponse, http } from 'msw'
import type { SetupServer } from 'msw/node'
import type { EntitlementClaim } from '../../src/core/claims.js'
import type { Platform } from '../../src/platform/platform.js'
import { createTestIssuer, type TestIssuer } from '../../src/testing.js'
import { NOW } from '../helpers.js'

export const SERVER = 'https://license.entitle.test'

/** A platform whose clock and timers move only when the test says so. Random is fixed at 0.5. */
export function manualPlatform(start = NOW) {
  let now = start
  /** Moves only with `advance`: a user setting the wall clock does not move it. */
  let monotonic = 0
  let nextId = 1
  const work = new Set<Promise<unknown>>()
  const timers = new Map<number, { at: number; fn: () => void }>()
  const platform: Platform = {
    now: () => now,
    monotonic: () => monotonic,
    random: () => 0.5,
    setTimeout(fn, ms) {
      const id = nextId++
      // As Node and browsers do: a delay past 2^31-1 ms fires after 1 ms (the bug a year-long license hit).
      timers.set(id, { at: now + (ms > 2_147_483_647 ? 1 : Math.max(0, ms)), fn })
      return id
    },
    clearTimeout(id) {
      timers.delete(id as number)
    },
    fetch: (input, init) => globalThis.fetch(input, init),
    waitUntil(promise) {
      work.add(promise)
      void promise.finally(() => work.delete(promise))
    },
  }
  /**
   * Lets event-loop work run, then waits for the background work the client started, as long as it makes progress
   * without the clock moving. Work that waits on a timer (a request timeout) stays pending until `advance` fires
   * it. The bounded real wait covers only WebCrypto, which completes on the thread pool, off the event loop.
   */
  async function idle(): Promise<void> {
    for (let round = 0; round < 40; round++) {
      await settle(5)
      if (work.size === 0) return
      const before = work.size
      await Promise.race([Promise.allSettled([...work]), new Promise((resolve) => setTimeout(resolve, 5))])
      if (work.size === before && round > 10) return
    }
  }
  return {
    idle,
    platform,
    get now() {
      return now
    },
    /** Sets the wall clock without running timers: a user changing the system clock. */
    setClock(to: number) {
      now = to
    },
    pending: () => timers.size,
    /** Moves time forward, running every timer that falls due, in order, letting async work settle after each. */
    async advance(ms: number) {
      const target = now + ms
      await idle()
      for (;;) {
        let due: [number, { at: number; fn: () => void }] | undefined
        for (const timer of timers)
          if (timer[1].at <= target && (!due || timer[1].at < due[1].at)) due = timer
        if (!due) break
        timers.delete(due[0])
        monotonic += Math.max(0, due[1].at - now)
        now = due[1].at
        due[1].fn()
        await idle()
      }
      monotonic += Math.max(0, target - now)
      now = target
      await idle()
    },
  }
}

/** Lets in-flight promise chains and msw's in-process responses run to completion. */
export async function settle(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((resolve) => setImmediate(resolve))
}

type Plans = Map<string, Partial<EntitlementClaim>>

/**
 * A license server speaking protocol v1, backed by msw: tokens per customer (ETag = jti, 304 while the held token
 * is younger than half its life), a revocation list, an event stream, and switches to make it fail.
 */
export async function fakeLicenseServer(msw: SetupServer, clock: { now: number }, tokenLifeSec = 3600) {
  const issuer: TestIssuer = await createTestIssuer({ now: () => clock.now, issuer: SERVER, audience: 'app' })
  const plans: Plans = new Map()
  const current = new Map<string, { token: string; jti: string; iat: number }>()
  const revoked: string[] = []
  const requests: Array<{ path: string; ifNoneMatch: string | null; authorization: string | null }> = []
  const state = {
    fail: undefined as
      | undefined
      | 'error500'
      | 'network'
      | 'hang'
      | 'stall-body'
      | 'unauthorized'
      | 'retry-after',
    wrongSubject: false,
    /** Apply `fail` to the entitlements endpoint only. */
    failTokensOnly: false,
    /** Misbehave: answer 304 to any matching If-None-Match, however old the held token. */
    always304: false,
    /** The `Retry-After` that `fail: 'retry-after'` sends. */
    retryAfter: '120',
  }
  let stream: ReadableStreamDefaultController<Uint8Array> | undefined
  let eventId = 0

  async function issueFor(subject: string) {
    const jti = `${subject}-${clock.now}-${Math.random().toString(36).slice(2, 8)}`
    const token = await issuer.issue(plans.get(subject)!, {
      subject: state.wrongSubject ? 'someone-else' : subject,
      expiresInSec: tokenLifeSec,
      tokenId: jti,
    })
    const entry = { token, jti, iat: clock.now }
    current.set(subject, entry)
    return entry
  }

  const failure = async (path: 'tokens' | 'other' = 'other') => {
    if (state.failTokensOnly && path !== 'tokens') return undefined
    switch (state.fail) {
      case 'error500':
        return new HttpResponse('down', { status: 500 })
      case 'retry-after':
        return new HttpResponse('busy', { status: 503, headers: { 'retry-after': state.retryAfter } })
      case 'unauthorized':
        return new HttpResponse('no', { status: 401 })
      case 'network':
        return HttpResponse.error()
      case 'stall-body':
        // Headers at once, then a body that never comes.
        return new HttpResponse(new ReadableStream({ start() {} }), {
          headers: { 'content-type': 'application/entitlement+jwt' },
        })
      case 'hang':
        await delay('infinite')
        return new HttpResponse('never')
      default:
        return undefined
    }
  }

  msw.use(
    http.get(`${SERVER}/v1/entitlements/:subject`, async ({ request, params }) => {
      const subject = String(params.subject)
      requests.push({
        path: `entitlements/${subject}`,
        ifNoneMatch: request.headers.get('if-none-match'),
        authorization: request.headers.get('authorization'),
      })
      const failed = await failure('tokens')
      if (failed) return failed
      if (!plans.has(subject)) return new HttpResponse('no license', { status: 404 })
      const held = current.get(subject)
      const halfLife = (tokenLifeSec * 1000) / 2
      const young = clock.now - (held?.iat ?? 0) < halfLife || state.always304
      if (held && request.headers.get('if-none-match') === held.jti && young) {
        return new HttpResponse(null, { status: 304, headers: { etag: held.jti } })
      }
      const fresh = held && clock.now - held.iat < halfLife ? held : await issueFor(subject)
      return new HttpResponse(fresh.token, {
        headers: { 'content-type': 'application/entitlement+jwt', etag: fresh.jti },
      })
    }),
    http.get(`${SERVER}/v1/revocations`, async ({ request }) => {
      requests.push({
        path: 'revocations',
        ifNoneMatch: request.headers.get('if-none-match'),
        authorization: request.headers.get('authorization'),
      })
      const failed = await failure()
      if (failed) return failed
      const etag = `r${revoked.length}`
      if (request.headers.get('if-none-match') === etag) return new HttpResponse(null, { status: 304 })
      return HttpResponse.json({ revoked }, { headers: { etag } })
    }),
    http.get(`${SERVER}/v1/events`, async () => {
      requests.push({ path: 'events', ifNoneMatch: null, authorization: null })
      const failed = await failure()
      if (failed) return failed
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          stream = controller
          controller.enqueue(new TextEncoder().encode(': connected\n\n'))
        },
      })
      return new HttpResponse(body, { headers: { 'content-type': 'text/event-stream' } })
    }),
  )

  return {
    issuer,
    requests,
    state,
    /** Sets what a customer has bought; the next token issued for them says so. */
    sell(subject: string, ent: Partial<EntitlementClaim>) {
      plans.set(subject, ent)
      current.delete(subject)
    },
    cancel(subject: string) {
      plans.delete(subject)
      current.delete(subject)
    },
    revoke(jti: string) {
      revoked.push(jti)
      for (const [subject, held] of current) if (held.jti === jti) current.delete(subject)
    },
    currentJti: (subject: string) => current.get(subject)?.jti,
    /** Pushes one Server-Sent Event to connected clients. */
    push(event: string, data: unknown) {
      stream?.enqueue(
        new TextEncoder().encode(`id: ${++eventId}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`),
      )
    },
    get streaming() {
      return stream !== undefined
    },
    count: (path: string) => requests.filter((r) => r.path === path).length,
  }
}
