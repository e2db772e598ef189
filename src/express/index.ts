import type { NextFunction, Request, RequestHandler, Response } from 'express'
import type { CheckContext, EntitlementsClient } from '../client/index.js'
import type { Decision } from '../core/decision.js'

declare global {
  namespace Express {
    interface Request {
      /** The decision `requireEntitlement` reached for this request (the last one, if several guard it). */
      entitlement?: Decision
    }
  }
}

/** Options of {@link requireEntitlement}. */
export interface RequireEntitlementOptions {
  /**
   * Who is asking and in what context. Default: only what the app's authentication set, never the request's own
   * headers: `req.user` (`customerId`, `subject` or `id`, a string or a number; `roles`; `region`), else
   * `req.auth` (`customerId` or `sub`, as `express-jwt` sets it; `roles`; `region`), else
   * `res.locals.customerId`. Return `undefined` for "nobody": the request is answered `401`.
   */
  context?: (req: Request, res: Response) => CheckContext | undefined | Promise<CheckContext | undefined>
  /**
   * Read the customer from this request header when the app's authentication set none (`'x-customer-id'`). Only
   * for a header that a **trusted proxy** sets and strips from what clients send: any caller can write a header,
   * and would then be any customer. Default: no header is read.
   */
  customerHeader?: string
  /**
   * The resource this request acts on, for a feature granted per resource: `kind:id`, from the route
   * (`(req) => \`workspace:${req.params.ws}\``). Added to the context; `undefined` adds nothing.
   */
  resource?: (req: Request) => string | undefined
  /**
   * Units this request uses of the feature's metered cap: a number or a function of the request. Default 0. Above
   * 0, the client must be made with `metering` (its `consume()` and `record()` count them).
   */
  consume?: number | ((req: Request) => number)
  /**
   * When consumed units count. `'always'` (default): taken atomically before the handler runs, so concurrent
   * requests can never pass the cap (fleet-wide with a `fleet` store). `'success'`: checked before, recorded only
   * when the response status is below 400 (a failed request costs nothing; concurrent requests may pass the cap by
   * as many as are in flight).
   */
  recordOn?: 'always' | 'success'
}

interface Identity {
  id?: unknown
  sub?: unknown
  customerId?: unknown
  subject?: unknown
  roles?: unknown
  region?: unknown
}

const SECONDS: Record<string, number> = {
  hour: 3600,
  day: 86_400,
  week: 604_800,
  month: 2_592_000,
  year: 31_536_000,
}

/** A customer id as authentication set it: a non-empty string, or a finite number (`req.user.id = 42`). */
function idOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value.length > 0 ? value : undefined
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  return undefined
}

/**
 * The context from what the app's authentication set, never from the request's own headers unless the app named
 * a trusted one: `req.user`, then `req.auth`, then `res.locals.customerId`, then `customerHeader`.
 */
function contextFrom(
  req: Request,
  res: Response,
  customerHeader: string | undefined,
): CheckContext | undefined {
  const user = (req as Request & { user?: Identity }).user
  const auth = (req as Request & { auth?: Identity }).auth
  const candidates: Array<[unknown, Identity | undefined]> = [
    [user?.customerId ?? user?.subject ?? user?.id, user],
    [auth?.customerId ?? auth?.sub, auth],
    [(res.locals as Identity | undefined)?.customerId, undefined],
    [customerHeader === undefined ? undefined : req.get(customerHeader), undefined],
  ]
  for (const [id, from] of candidates) {
    const subject = idOf(id)
    if (subject === undefined) continue
    const context: CheckContext = { subject }
    if (Array.isArray(from?.roles) && from.roles.every((role) => typeof role === 'string'))
      context.roles = from.roles as string[]
    if (typeof from?.region === 'string') context.region = from.region
    return context
  }
  return undefined
}

function problem(res: Response, status: number, body: Record<string, unknown>): void {
  res
    .status(status)
    .type('application/problem+json')
    .send(JSON.stringify({ status, ...body }))
}

/**
 * The IETF RateLimit fields (draft-ietf-httpapi-ratelimit-headers) for a metered cap: its quota and window, and
 * what remains until it resets.
 */
function rateLimitHeaders(res: Response, decision: Decision, period: string | undefined): void {
  if (decision.limit === undefined || decision.remaining === undefined || decision.resetsAt === undefined)
    return
  const name = `"${decision.feature.replaceAll(/["\\]/g, '')}"`
  const reset = Math.max(0, Math.ceil((decision.resetsAt - Date.now()) / 1000))
  const window = period === undefined ? undefined : SECONDS[period]
  res.set('ratelimit-policy', `${name};q=${decision.limit}${window ? `;w=${window}` : ''}`)
  res.set('ratelimit', `${name};r=${decision.remaining};t=${reset}`)
}

/**
 * Answers a denial: 403 (not in the plan, and every other reason), 429 (cap spent, or at its ceiling), 402 (credits
 * spent), 503 (cannot tell, or credits that need the license server reached first).
 */
function deny(res: Response, decision: Decision): void {
  const common = {
    detail: decision.reason,
    feature: decision.feature,
    ...(decision.upgrade ? { upgrade: decision.upgrade } : {}),
  }
  // A spent cap, or a soft cap at its ceiling: 429 until the window resets.
  const capSpent =
    decision.reason === 'usage_cap_reached' ||
    (decision.reason === 'ceiling_reached' && decision.resetsAt !== undefined)
  if (capSpent) {
    if (decision.resetsAt !== undefined)
      res.set('retry-after', String(Math.max(1, Math.ceil((decision.resetsAt - Date.now()) / 1000))))
    problem(res, 429, {
      type: `urn:entitle:decision:${decision.reason}`,
      title: decision.reason === 'ceiling_reached' ? 'Usage ceiling reached' : 'Usage cap reached',
      limit: decision.limit,
      used: decision.used,
      resetsAt: decision.resetsAt === undefined ? undefined : new Date(decision.resetsAt).toISOString(),
      ...common,
    })
    return
  }
  if (decision.credits !== undefined && decision.reason === 'credits_exhausted') {
    const { type, cost, available } = decision.credits
    problem(res, 402, {
      type: 'urn:entitle:decision:credits_exhausted',
      title: 'Not enough credits',
      credits: { type, cost, available },
      ...common,
    })
    return
  }
  if (decision.reason === 'unavailable' || decision.reason === 'credits_offline') {
    res.set('retry-after', '30')
    problem(res, 503, {
      type: `urn:entitle:decision:${decision.reason}`,
      title: 'Entitlements unavailable',
      ...common,
    })
    return
  }
  problem(res, 403, { type: `urn:entitle:decision:${decision.reason}`, title: 'Not entitled', ...common })
}

/**
 * Express middleware (Express 4 and 5) that lets a request through only when the customer is entitled to
 * `feature`, optionally using units of its metered cap. The decision is on `req.entitlement` for the handler. A
 * denial is `application/problem+json`: `403` with the upgrade hint, `429` with `Retry-After` and the IETF
 * `RateLimit`/`RateLimit-Policy` fields for a spent cap, `402` with the credits for a feature whose credits are
 * spent, `503` when entitlements cannot be told. A bad, missing or
 * expired token is a denial, never a `500`.
 *
 * @example
 * ```ts
 * import { requireEntitlement } from 'entitle/express'
 * app.get('/api/search', requireEntitlement(entitlements, 'api-calls', { consume: 1 }), (req, res) => {
 *   res.json({ results: [], remaining: req.entitlement?.remaining })
 * })
 * ```
 */
export function requireEntitlement(
  client: Pick<EntitlementsClient, 'check' | 'consume' | 'record' | 'entitlements'>,
  feature: string,
  options: RequireEntitlementOptions = {},
): RequestHandler {
  if (typeof feature !== 'string' || feature.length === 0)
    throw new TypeError('feature must be a non-empty string')
  const recordOn = options.recordOn ?? 'always'
  if (recordOn !== 'always' && recordOn !== 'success')
    throw new TypeError("recordOn must be 'always' or 'success'")
  const customerHeader = options.customerHeader
  if (customerHeader !== undefined && (typeof customerHeader !== 'string' || customerHeader.length === 0))
    throw new TypeError('customerHeader must be a header name')
  const resolveContext =
    options.context ?? ((req: Request, res: Response) => contextFrom(req, res, customerHeader))

  async function guard(req: Request, res: Response, next: NextFunction): Promise<void> {
    let context = await resolveContext(req, res)
    const resource = options.resource?.(req)
    if (context !== undefined && resource !== undefined) context = { ...context, resource }
    if (context === undefined) {
      problem(res, 401, {
        type: 'urn:entitle:problem:customer-unknown',
        title: 'Customer unknown',
        detail: 'no customer could be told from this request',
      })
      return
    }
    const amount = typeof options.consume === 'function' ? options.consume(req) : (options.consume ?? 0)
    if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
      problem(res, 400, {
        type: 'urn:entitle:decision:invalid_request',
        title: 'Invalid amount',
        detail: 'the amount to consume is not a finite number of zero or more',
      })
      return
    }
    const subject = context.subject
    const customerUnknown = () =>
      problem(res, 401, { type: 'urn:entitle:problem:customer-unknown', title: 'Customer unknown' })
    if (subject !== undefined && (typeof subject !== 'string' || subject.length === 0)) {
      customerUnknown()
      return
    }
    let decision: Decision
    try {
      decision =
        amount > 0 && recordOn === 'always'
          ? await client.consume(feature, { ...context, amount })
          : await client.check(feature, amount > 0 ? { ...context, amount } : context)
    } catch (error) {
      // A multi-tenant client asked with no subject throws a TypeError: the request named no customer. Any other
      // error (a bug in the app's context function or in a client) is not the customer's: it goes to next().
      if (error instanceof TypeError && subject === undefined) {
        customerUnknown()
        return
      }
      throw error
    }
    req.entitlement = decision
    res.locals.entitlement = decision
    const cap = client.entitlements(context.subject)?.features.get(feature)?.cap
    rateLimitHeaders(res, decision, cap?.period)
    if (!decision.allowed) {
      deny(res, decision)
      return
    }
    // Past a soft limit the request goes on, marked: the units past the limit (billed as overage) in a header, and
    // `req.entitlement.reason === 'overage'` with its `overage`.
    if (decision.overage !== undefined) res.set('entitlement-overage', String(decision.overage))
    if (amount > 0 && recordOn === 'success') {
      res.once('finish', () => {
        if (res.statusCode >= 400) return
        try {
          client.record(feature, amount, context.subject === undefined ? {} : { subject: context.subject })
        } catch {
          // No usage destination configured: nothing to record to (documented); never crash after the response.
        }
      })
    }
    next()
  }

  // Express 4 does not catch a rejected promise: every error goes to next() here.
  return (req, res, next) => {
    guard(req, res, next).catch(next)
  }
}
