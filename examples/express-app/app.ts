// An Express app that sells four things: exports (a plan feature), single sign-on (a higher plan's feature), search
// (metered: a monthly cap of API calls) and AI completions (paid in credits). Every route asks the entitlements
// client; nothing here knows plans or prices.
import type { Decision, EntitlementsClient } from 'entitle'
import express, { type Request, type Response } from 'express'

/**
 * A denial as RFC 9457 problem+json: 403 for what the plan lacks (with the upgrade hint), 429 for a spent cap, 402
 * for spent credits.
 */
function deny(res: Response, decision: Decision): void {
  const capped = decision.reason === 'usage_cap_reached'
  const status = capped ? 429 : decision.reason === 'credits_exhausted' ? 402 : 403
  if (capped && decision.resetsAt !== undefined)
    res.set('retry-after', String(Math.max(1, Math.ceil((decision.resetsAt - Date.now()) / 1000))))
  res
    .status(status)
    .type('application/problem+json')
    .send(
      JSON.stringify({
        type: `urn:entitle:decision:${decision.reason}`,
        title: capped ? 'Usage cap reached' : 'Not entitled',
        status,
        detail: decision.reason,
        feature: decision.feature,
        limit: decision.limit,
        used: decision.used,
        credits: decision.credits,
        upgrade: decision.upgrade,
      }),
    )
}

/** The customer of a request: a header here; your session or API key lookup in a real app. */
const customerOf = (req: Request): string => req.get('x-customer-id') ?? ''

export function createApp(entitlements: EntitlementsClient) {
  const app = express()
  // No customer, no entitlements: a 401 here, never a TypeError from the client turned into a 500.
  app.use('/api', (req, res, next) => {
    if (/^[A-Za-z0-9._:-]{1,64}$/.test(customerOf(req))) return next()
    res
      .status(401)
      .type('application/problem+json')
      .send(JSON.stringify({ title: 'Who are you?', status: 401 }))
  })

  app.get('/api/reports/export', async (req, res) => {
    const decision = await entitlements.check('export', { subject: customerOf(req) })
    if (!decision.allowed) return deny(res, decision)
    res.json({ exported: true, plan: decision.plan })
  })

  app.get('/api/sso/config', async (req, res) => {
    const decision = await entitlements.check('sso', { subject: customerOf(req) })
    if (!decision.allowed) return deny(res, decision)
    res.json({ sso: 'configured', plan: decision.plan })
  })

  // Metered: check the cap for this one call, do the work, then record it. The next check already counts it. Past
  // a soft cap the call is allowed and billed as overage (`reason: 'overage'`): say so to the caller.
  app.get('/api/search', async (req, res) => {
    const subject = customerOf(req)
    const decision = await entitlements.check('api-calls', { subject, amount: 1 })
    if (!decision.allowed) return deny(res, decision)
    entitlements.record('api-calls', 1, { subject })
    res.json({
      results: [],
      used: (decision.used ?? 0) + 1,
      limit: decision.limit,
      ...(decision.overage === undefined ? {} : { overage: decision.overage }),
    })
  })

  // Paid in credits: consume() checks the balance and spends in one step (5 credits a completion, as the plan says).
  app.get('/api/ai/complete', async (req, res) => {
    const decision = await entitlements.consume('ai-completion', { subject: customerOf(req) })
    if (!decision.allowed) return deny(res, decision)
    const credits = decision.credits!
    res.json({ completion: '…', cost: credits.cost, creditsLeft: credits.available - credits.cost })
  })

  return app
}
