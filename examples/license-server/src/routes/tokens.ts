import { createHash } from 'node:crypto'
import { REVOCATION_LIST_TYPE } from 'entitle'
import { SUBJECT_PATTERN } from 'entitle/protocol'
import { Hono, type MiddlewareHandler } from 'hono'
import type { AppEnv } from '../env.js'
import { DomainError } from '../errors.js'
import { idParam } from '../json.js'
import { customerFor } from '../services/credentials.js'
import type { Services } from '../services/index.js'

const REVOCATION_LIST_MEDIA_TYPE = `application/${REVOCATION_LIST_TYPE}`

/** The SDK's reads (protocol v1, docs/client.md): a customer's token, with ETag and 304; the revocation list. */
export function tokenRoutes(services: Services, auth: MiddlewareHandler<AppEnv>) {
  const router = new Hono<AppEnv>()

  router.get('/v1/entitlements/:subject', auth, async (c) => {
    const who = customerFor(c.var.scope, idParam(c, 'subject', SUBJECT_PATTERN))
    if ('refused' in who)
      throw new DomainError('forbidden', 'Forbidden', 'these credentials belong to another customer')
    // The token here binds no device: a license key (a device's credential) would make one seat many machines.
    if (c.var.scope.kind === 'customer' && c.var.scope.device)
      throw new DomainError(
        'forbidden',
        'Device-bound tokens only',
        'a license key gets tokens bound to a device: POST /v1/activations with its fingerprint',
      )
    const { token, etag } = await services.tokens.entitlementToken(who.customerId)
    c.header('etag', etag)
    c.header('cache-control', 'private, no-store')
    const held = (c.req.header('if-none-match') ?? '').split(',').map((tag) => tag.trim().replace(/^W\//, ''))
    if (held.includes(etag)) return c.body(null, 304)
    return c.body(token, 200, { 'content-type': 'application/entitlement+jwt' })
  })

  router.get('/v1/revocations', auth, async (c) => {
    // A signed list is for an app with no network (client.importRevocations): it carries its own issue time.
    if ((c.req.header('accept') ?? '').includes(REVOCATION_LIST_MEDIA_TYPE)) {
      const list = await services.tokens.signedRevocations(c.var.scope)
      return c.body(list, 200, { 'content-type': REVOCATION_LIST_MEDIA_TYPE, 'cache-control': 'no-store' })
    }
    const revoked = services.tokens.revocations(c.var.scope)
    const etag = `"${createHash('sha256').update(revoked.join(',')).digest('base64url').slice(0, 22)}"`
    c.header('etag', etag)
    if (c.req.header('if-none-match') === etag) return c.body(null, 304)
    return c.json({ revoked })
  })

  return router
}
