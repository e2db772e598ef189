import { Hono, type MiddlewareHandler } from 'hono'
import { streamSSE } from 'hono/streaming'
import type { AppEnv } from '../env.js'
import { DomainError } from '../errors.js'
import type { Scope } from '../services/credentials.js'
import { eventBody, type LicenseEvent, REPLAY_LIMIT, visible } from '../services/events.js'
import type { Services } from '../services/index.js'

interface OpenStream {
  readonly scope: Scope
  readonly abort: AbortController
}

/**
 * Server-Sent Events (`GET /v1/events`): `entitlements`, `revocations` and usage `threshold` crossings as they
 * happen, `Last-Event-ID` replays what a reconnecting client missed (a new stream starts with an `id` line that sets the cursor) (its own events, filtered before the replay's
 * limit), a comment every `heartbeatMs`. At most `maxPerService` streams on the service key (a fleet of instances shares it) and
 * `maxPerCustomer` on one customer's credential (`429` beyond, with `Retry-After`); streams opened with a
 * customer's credentials end when those are replaced. `GET /v1/changes?after=ID` answers the same events as JSON,
 * for a client that polls because it could not hold a stream.
 */
export function eventRoutes(
  services: Services,
  auth: MiddlewareHandler<AppEnv>,
  options: { heartbeatMs: number; maxPerService: number; maxPerCustomer: number },
) {
  const router = new Hono<AppEnv>()
  const byCredential = new Map<string, Set<OpenStream>>()

  services.events.emitter.on('credentials', (customerId) => {
    for (const streams of byCredential.values())
      for (const stream of streams)
        if (stream.scope.kind === 'customer' && stream.scope.customerId === customerId) stream.abort.abort()
  })

  router.get('/v1/events', auth, (c) => {
    const { scope, credential } = c.var
    const streams = byCredential.get(credential) ?? new Set<OpenStream>()
    byCredential.set(credential, streams)
    const limit = scope.kind === 'service' ? options.maxPerService : options.maxPerCustomer
    if (streams.size >= limit)
      throw new DomainError(
        'too_many',
        'Too many event streams',
        `at most ${limit} event streams per ${scope.kind === 'service' ? 'service key' : 'customer credential'}: poll GET /v1/changes instead`,
        {},
        30,
      )
    const open: OpenStream = { scope, abort: new AbortController() }
    streams.add(open)
    const lastEventId = c.req.header('last-event-id')
    const lastId = Number(lastEventId ?? 0)
    return streamSSE(c, async (stream) => {
      const queue: LicenseEvent[] = []
      let wake: (() => void) | undefined
      const onEvent = (event: LicenseEvent) => {
        if (!visible(scope, event)) return
        queue.push(event)
        wake?.()
      }
      // Listen first, then replay what the client missed: nothing falls between the two.
      services.events.emitter.on('event', onEvent)
      const stop = () => {
        services.events.emitter.off('event', onEvent)
        streams.delete(open)
        if (streams.size === 0) byCredential.delete(credential)
        wake?.()
      }
      stream.onAbort(stop)
      open.abort.signal.addEventListener('abort', () => {
        stop()
        void stream.close()
      })
      const replay =
        lastEventId !== undefined && Number.isSafeInteger(lastId) && lastId >= 0
          ? services.events.since(scope, lastId)
          : []
      queue.unshift(...replay.filter((event) => !queue.some((queued) => queued.id === event.id)))
      // A client resuming has its cursor. A new one is told where it starts (an `id` with no event, which sets
      // the cursor only): cut before it hears any event, it resumes from here and misses nothing in between.
      await stream.write(
        lastEventId === undefined ? `: connected\nid: ${services.events.lastId()}\n\n` : ': connected\n\n',
      )
      while (!stream.aborted && !stream.closed && !open.abort.signal.aborted) {
        while (queue.length > 0) {
          const event = queue.shift()!
          await stream.writeSSE({
            id: String(event.id),
            event: event.type,
            data: JSON.stringify(eventBody(event)),
          })
        }
        const idle = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(true), options.heartbeatMs)
          wake = () => {
            clearTimeout(timer)
            resolve(false)
          }
        })
        wake = undefined
        if (idle && !open.abort.signal.aborted) await stream.write(': heartbeat\n\n')
      }
    })
  })

  router.get('/v1/changes', auth, (c) => {
    const { scope } = c.var
    const after = c.req.query('after')
    // No cursor yet: where to start from, so the next poll hears only what happens after it.
    if (after === undefined) return c.json({ events: [], last: String(services.events.lastId()) })
    const afterId = Number(after)
    if (!Number.isSafeInteger(afterId) || afterId < 0)
      throw new DomainError('invalid', 'Invalid cursor', 'after must be an event id from an earlier answer')
    const events = services.events.since(scope, afterId)
    return c.json({
      events: events.map((event) => ({ id: String(event.id), event: event.type, ...eventBody(event) })),
      // The cursor moves past events this scope may not see, so a quiet customer does not re-read a busy log.
      last: String(
        Math.max(
          afterId,
          events.at(-1)?.id ?? 0,
          events.length < REPLAY_LIMIT ? services.events.lastId() : 0,
        ),
      ),
      more: events.length >= REPLAY_LIMIT,
    })
  })

  return {
    router,
    /** Ends every open event stream (a server shutting down). */
    closeAll(): void {
      for (const streams of [...byCredential.values()])
        for (const stream of [...streams]) stream.abort.abort()
    },
  }
}
