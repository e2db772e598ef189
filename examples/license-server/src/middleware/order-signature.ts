import { createHmac } from 'node:crypto'
import { createMiddleware } from 'hono/factory'
import type { AppEnv } from '../env.js'
import { DomainError } from '../errors.js'
import { sameSecret } from '../services/credentials.js'
import type { OrderService } from '../services/orders.js'

/** `t=<unix seconds>,v1=<hex>` as a Map: own keys only, whatever names the header carries. */
function signatureParts(header: string): Map<string, string> {
  const parts = new Map<string, string>()
  for (const part of header.split(',')) {
    const at = part.indexOf('=')
    if (at > 0) parts.set(part.slice(0, at).trim(), part.slice(at + 1).trim())
  }
  return parts
}

/**
 * Verifies `Entitle-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` with the order secret: a
 * missing or wrong signature is `401`, one more than `toleranceMs` from the server's clock is `401` (stale), and the
 * exact same signed request twice is `409` (a replay). The raw body it covered is `c.var.rawBody`.
 */
export function orderSignature(options: {
  secret: string
  toleranceMs: number
  orders: OrderService
  now: () => number
}) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const raw = await c.req.text()
    const parts = signatureParts(c.req.header('entitle-signature') ?? '')
    const timestamp = Number(parts.get('t'))
    const given = parts.get('v1')
    if (!Number.isSafeInteger(timestamp) || given === undefined || given === '')
      throw new DomainError(
        'unauthenticated',
        'Signature required',
        'send Entitle-Signature: t=<unix seconds>,v1=<hex hmac>',
      )
    const expected = createHmac('sha256', options.secret).update(`${timestamp}.${raw}`).digest('hex')
    if (!sameSecret(given, expected)) throw new DomainError('unauthenticated', 'Bad signature')
    if (Math.abs(options.now() - timestamp * 1000) > options.toleranceMs)
      throw new DomainError(
        'unauthenticated',
        'Stale signature',
        `signed more than ${options.toleranceMs / 1000} s from now`,
      )
    if (!options.orders.rememberSignature(given, 2 * options.toleranceMs))
      throw new DomainError('conflict', 'Replayed request', 'this exact signed request was received before')
    c.set('rawBody', raw)
    await next()
  })
}
