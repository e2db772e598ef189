// Next.js middleware (`middleware.ts` at the project's root), which runs in Vercel's edge runtime before each
// matched request: a customer's routes for a feature they have not bought answer 403 with the upgrade to offer,
// before any page or API route runs. One client per isolate, made at module scope (`createEntitlements()` starts
// nothing until the first check); its timers end with the request, so the requests run its background work.
import { createEntitlements } from 'entitle'

/** What Next.js passes as the middleware's second argument (`NextFetchEvent`): the request's `waitUntil`. */
interface FetchEventLike {
  waitUntil(promise: Promise<unknown>): void
}

const LICENSE_SERVER = process.env.LICENSE_SERVER ?? 'http://127.0.0.1:8787'
/** The event being served: work the client starts (a renewal, a reconnect) runs to its end within it. */
let serving: FetchEventLike | undefined

const entitlements = createEntitlements({
  server: { url: LICENSE_SERVER, apiKey: process.env.ENTITLE_SERVICE_KEY, events: true },
  keys: new URL('/.well-known/jwks.json', LICENSE_SERVER),
  issuer: LICENSE_SERVER,
  audience: 'acme-editor',
  background: 'requests',
  platform: { waitUntil: (work) => serving?.waitUntil(work) },
})

/** The feature each route needs, by the path after the customer's segment. */
const FEATURES: Record<string, string> = { export: 'export', sso: 'sso', audit: 'audit-log' }

// Routes are `/<customer>/<feature route>/…`: whether this user may act for that customer is the app's own
// sign-in, checked before this; what the customer bought is this middleware's.
export const config = { matcher: ['/:customer/(export|sso|audit)/:path*'] }

export async function middleware(request: Request, event: FetchEventLike): Promise<Response | undefined> {
  serving = event
  const [, customer, route] = new URL(request.url).pathname.split('/')
  const feature = FEATURES[route ?? '']
  if (!customer || feature === undefined) return undefined
  const decision = await entitlements.check(feature, { subject: customer })
  // Returning nothing lets the request through (`NextResponse.next()`).
  if (decision.allowed) return undefined
  return Response.json(
    { feature, reason: decision.reason, upgrade: decision.upgrade },
    { status: decision.reason === 'unavailable' ? 503 : 403 },
  )
}
