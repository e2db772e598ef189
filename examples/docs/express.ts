// Guarded Express routes, against the reference license server (`npm run server`; ENTITLE_SERVICE_KEY from its
// secrets.env). Run it with `npx tsx express.ts` (it listens on PORT, 3000 by default), then `curl -H
// 'authorization: Bearer acme-api-key' 127.0.0.1:3000/api/search` once acme has a license (`npm run order --
// --customer acme --sku starter`).
import { createEntitlements, metering } from 'entitle'
import { requireEntitlement } from 'entitle/express'
import express from 'express'

const LICENSE_SERVER = process.env.LICENSE_SERVER ?? 'http://127.0.0.1:8787'

export const entitlements = createEntitlements({
  server: { url: LICENSE_SERVER, apiKey: process.env.ENTITLE_SERVICE_KEY, events: true },
  keys: new URL('/.well-known/jwks.json', LICENSE_SERVER),
  issuer: LICENSE_SERVER,
  audience: 'acme-editor',
  // The routes below consume units of a metered cap: consume() comes with the metering plug-in.
  metering,
})

export const app = express()

// Your own authentication, whatever it is (sessions, OAuth, API keys): here, API keys your app gave its customers.
// requireEntitlement reads the customer only from what it sets, never from a header the caller chose.
const apiKeys = new Map([[process.env.ACME_API_KEY ?? 'acme-api-key', 'acme']])
app.use((req, res, next) => {
  const customer = apiKeys.get(req.get('authorization')?.replace(/^Bearer /, '') ?? '')
  if (customer !== undefined) res.locals.customerId = customer
  next()
})

// A plan feature: 403 problem+json with the upgrade hint when the customer's plan lacks it.
app.get('/settings/sso', requireEntitlement(entitlements, 'sso'), (req, res) => {
  res.json({ sso: 'configured', plan: req.entitlement?.plan })
})

// A metered cap: one unit per call, taken atomically; 429 with Retry-After and RateLimit fields once spent.
app.get('/api/search', requireEntitlement(entitlements, 'api-calls', { consume: 1 }), (req, res) => {
  res.json({ results: [], remaining: req.entitlement?.remaining })
})

export const server = app.listen(Number(process.env.PORT ?? 3000))
