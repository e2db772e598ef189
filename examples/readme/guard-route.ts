// A route guarded by the customer's signed entitlement token, verified offline with the license server's keys
// (the reference server by default: `npm run server`). Its client sends the token it holds as X-Entitlement-Token.
import { checkEntitlement, createEntitlementVerifier } from 'entitle'
import express, { type Response } from 'express'

const LICENSE_SERVER = process.env.LICENSE_SERVER ?? 'http://127.0.0.1:8787'

// Once, at start-up: trust the license server's public keys (fetched, cached, refreshed on rotation).
const verifier = createEntitlementVerifier({
  keys: new URL('/.well-known/jwks.json', LICENSE_SERVER),
  issuer: LICENSE_SERVER,
  audience: 'acme-editor',
})

export const app = express()

const problem = (res: Response, status: number, body: Record<string, unknown>) =>
  res
    .status(status)
    .type('application/problem+json')
    .send(JSON.stringify({ status, ...body }))

// Only customers whose plan includes single sign-on get through.
app.get('/settings/sso', async (req, res) => {
  const token = req.get('x-entitlement-token')
  if (token === undefined) return problem(res, 401, { title: 'Entitlement token required' })
  const decision = await checkEntitlement(token, 'sso', { verifier })
  if (decision.allowed)
    return res.json({ sso: 'configured', customer: decision.subject, plan: decision.plan })
  // The keys could not be fetched: no one can tell, so ask the caller to come back rather than say no.
  if (decision.error === 'jwks_unavailable') {
    res.set('retry-after', '30')
    return problem(res, 503, { title: 'Entitlements unavailable', detail: decision.error })
  }
  // Forged, expired, for another product, or not in the plan: 403 with the reason and where to upgrade.
  return problem(res, 403, { title: 'Not entitled', detail: decision.reason, upgrade: decision.upgrade })
})

if (process.env.PORT !== undefined) app.listen(Number(process.env.PORT))
