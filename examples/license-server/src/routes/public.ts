import { Hono } from 'hono'
import type { AppEnv } from '../env.js'
import type { Keyring } from '../keys.js'
import { openApiDocument } from '../openapi.js'

/** What anyone may read: health, the API document, the public keys. */
export function publicRoutes(keyring: Keyring, issuer: string) {
  const router = new Hono<AppEnv>()
  router.get('/healthz', (c) => c.json({ ok: true }))
  router.get('/openapi.json', (c) => c.json(openApiDocument(issuer)))
  router.get('/.well-known/jwks.json', (c) => {
    c.header('cache-control', 'public, max-age=300')
    return c.json(keyring.jwks())
  })
  return router
}
