import { createEntitlements } from 'entitle'
import { requireEntitlement } from 'entitle/express'
import express from 'express'

const LICENSE_SERVER = process.env.LICENSE_SERVER_URL ?? 'https://license.example.com'

export const entitlements = createEntitlements({
  server: { url: LICENSE_SERVER, apiKey: process.env.LICENSE_API_KEY, events: true },
  keys: new URL('/.well-known/jwks.json', LICENSE_SERVER),
  issuer: 'https://license.example.com',
  audience: 'my-app',
})

export const app = express()

// A plan feature: 403 problem+json with the upgrade hint when the customer's plan lacks it.
app.get('/reports/export', requireEntitlement(entitlements, 'export'), (req, res) => {
  res.json({ exported: true, plan: req.entitlement?.plan })
})

// A metered cap: one unit per call, taken atomically; 429 with Retry-After and RateLimit fields once spent.
app.get('/api/search', requireEntitlement(entitlements, 'api-calls', { consume: 1 }), (req, res) => {
  res.json({ results: [], remaining: req.entitlement?.remaining })
})
