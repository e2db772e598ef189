import { checkEntitlement, createEntitlementVerifier } from 'entitle'
import express from 'express'

// Once, at start-up: trust the license server's public keys (fetched, cached, refreshed on rotation).
const verifier = createEntitlementVerifier({
  keys: new URL(process.env.LICENSE_JWKS_URL ?? 'https://license.example.com/.well-known/jwks.json'),
  issuer: 'https://license.example.com',
  audience: 'my-app',
})

export const app = express()

// Only customers whose plan includes "export" get through; everyone else gets a reason and an upgrade hint.
app.get('/reports/export', async (req, res) => {
  const decision = await checkEntitlement(req.get('x-entitlement-token'), 'export', {
    verifier,
    context: { subject: req.get('x-customer-id'), roles: req.get('x-user-roles')?.split(',') },
  })
  if (!decision.allowed) {
    const problem = { title: 'Not entitled', status: 403, detail: decision.reason, upgrade: decision.upgrade }
    res.status(403).type('application/problem+json').send(JSON.stringify(problem))
    return
  }
  res.json({ exported: true, plan: decision.plan })
})
