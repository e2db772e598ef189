// A Cloudflare Worker in front of an API: one client per isolate, made at the first request (a Worker's bindings
// arrive with the request) and kept in module scope, its state in Workers KV so a cold isolate starts from the last
// good token. `createEntitlements()` starts nothing until the first check, so it may be made at module scope too.
import { createEntitlements, createKvStorage, type EntitlementsClient, type KvNamespaceLike } from 'entitle'

export interface Env {
  LICENSE_SERVER: string
  ENTITLE_SERVICE_KEY: string
  LICENSES: KvNamespaceLike
}

interface RequestContext {
  waitUntil(promise: Promise<unknown>): void
}

let client: EntitlementsClient | undefined
/** The request being served: work the client starts (a renewal that fell due) runs to its end within it. */
let serving: RequestContext | undefined

function clientFor(env: Env): EntitlementsClient {
  client ??= createEntitlements({
    server: { url: env.LICENSE_SERVER, apiKey: env.ENTITLE_SERVICE_KEY, events: true },
    keys: new URL('/.well-known/jwks.json', env.LICENSE_SERVER),
    issuer: env.LICENSE_SERVER,
    audience: 'acme-editor',
    storage: createKvStorage(env.LICENSES),
    // A Worker's timers and streams end with their request: the requests run what falls due (docs/edge.md).
    background: 'requests',
    platform: { waitUntil: (work) => serving?.waitUntil(work) },
  })
  return client
}

export default {
  async fetch(request: Request, env: Env, ctx: RequestContext): Promise<Response> {
    serving = ctx
    const customer = new URL(request.url).searchParams.get('customer')
    if (!customer) return Response.json({ error: 'customer is required' }, { status: 400 })
    const entitlements = clientFor(env)
    const decision = await entitlements.check('export', { subject: customer })
    // Storage writes finish after the response, within the request's life (platform.waitUntil above). A Worker that
    // meters (made with `metering`) sends its usage the same way: ctx.waitUntil(entitlements.flush()).
    return Response.json(
      { allowed: decision.allowed, reason: decision.reason },
      { status: decision.allowed ? 200 : 403 },
    )
  },
}
