import { HttpResponse, http } from 'msw'
import { setupServer } from 'msw/node'
import { createElement as h } from 'react'
import { renderToString } from 'react-dom/server'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createEntitlements, type EntitlementsClient, metering } from '../../src/index.js'
import {
  createEntitlementsStore,
  Entitled,
  EntitlementsProvider,
  useBalance,
  useEntitlement,
} from '../../src/react/index.js'
import { createTestIssuer } from '../../src/testing.js'

const SERVER = 'https://license.react.test'
const msw = setupServer()
beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
afterAll(() => msw.close())
let clients: EntitlementsClient[] = []
afterEach(async () => {
  await Promise.all(clients.map((client) => client.close({ deadlineMs: 0 })))
  clients = []
})

async function setup() {
  const issuer = await createTestIssuer({ issuer: SERVER, audience: 'app' })
  const plans = new Map<string, object>([
    [
      'acme',
      { plan: { id: 'starter' }, features: { export: true }, upgrades: { sso: { plan: 'business' } } },
    ],
  ])
  msw.use(
    http.get(`${SERVER}/v1/entitlements/:subject`, async ({ params }) => {
      const ent = plans.get(String(params.subject))
      if (ent === undefined) return new HttpResponse(null, { status: 404 })
      return new HttpResponse(await issuer.issue(ent, { subject: String(params.subject) }))
    }),
    http.get(`${SERVER}/v1/revocations`, () => HttpResponse.json({ revoked: [] })),
  )
  const client = createEntitlements({
    metering,
    server: { url: SERVER, revocationIntervalMs: 0 },
    keys: issuer.jwks,
    issuer: SERVER,
    audience: 'app',
  })
  clients.push(client)
  return { client, plans, issuer }
}

/** Shows one decision for the given roles. */
function Probe({ roles }: { roles: string[] }) {
  const decision = useEntitlement('reports', { roles })
  return h('span', null, decision.allowed ? 'yes' : decision.reason)
}

/** Shows what is left of the AI credits. */
function Left() {
  const balance = useBalance('ai-credits')
  return h('span', null, balance === undefined ? '…' : `${balance.available} left`)
}

/** Shows one repository's build decision. */
function Repo({ repo }: { repo: string }) {
  const decision = useEntitlement('builds', { resource: `repository:${repo}` })
  return h(
    'span',
    null,
    decision.allowed ? 'build' : `${decision.reason} by the ${decision.resource?.deniedBy}`,
  )
}

const Page = () =>
  h(
    'p',
    null,
    h(Entitled, { feature: 'export', loading: 'loading', fallback: 'no export' }, 'export'),
    ' ',
    h(
      Entitled,
      { feature: 'sso', loading: 'loading', fallback: (decision) => `upgrade to ${decision.upgrade?.plan}` },
      'sso',
    ),
  )

describe('entitle/react', () => {
  it('renders on the server from a snapshot: answers, not a loading state', async () => {
    const { client } = await setup()
    await client.load('acme')
    const snapshot = client.snapshot('acme')
    const html = renderToString(h(EntitlementsProvider, { client, subject: 'acme', snapshot }, h(Page)))
    expect(html).toBe('<p>export<!-- --> <!-- -->upgrade to business</p>')
  })

  it('shows the loading state, never a denial, before the customer is held', async () => {
    const { client } = await setup()
    const html = renderToString(h(EntitlementsProvider, { client, subject: 'acme' }, h(Page)))
    expect(html).toBe('<p>loading<!-- --> <!-- -->loading</p>')
  })

  it('keeps one snapshot until an answer changes, then tells its listeners once', async () => {
    const { client, plans } = await setup()
    const store = createEntitlementsStore(client, 'acme')
    let heard = 0
    const stop = store.subscribe(() => heard++)
    for (let i = 0; i < 50 && store.getSnapshot().status !== 'loaded'; i++)
      await new Promise((done) => setTimeout(done, 10))
    const loaded = store.getSnapshot()
    expect(loaded.status).toBe('loaded')
    expect(heard).toBe(1)
    // Time passing (age) is no change.
    await new Promise((done) => setTimeout(done, 20))
    store.refresh()
    expect(store.getSnapshot()).toBe(loaded)
    // An upgrade is.
    plans.set('acme', { plan: { id: 'business' }, features: { export: true, sso: true } })
    await client.refresh('acme')
    expect(heard).toBe(2)
    expect(store.getSnapshot().decisions.sso).toMatchObject({ allowed: true })
    stop()
    plans.set('acme', { plan: { id: 'starter' }, features: { export: true } })
    await client.refresh('acme')
    expect(heard).toBe(2) // no one listening: nothing heard
  })

  it('answers a context the snapshot was not taken with from the client', async () => {
    const { client, plans } = await setup()
    plans.set('acme', { plan: { id: 'team' }, features: { reports: { roles: ['admin'] }, export: true } })
    await client.load('acme')
    const store = createEntitlementsStore(client, 'acme')
    const render = (roles: string[]) =>
      renderToString(
        h(
          EntitlementsProvider,
          { client, subject: 'acme', snapshot: store.getSnapshot() },
          h(Probe, { roles }),
        ),
      )
    const exportChecks = () => client.stats().decisions.export?.allowed ?? 0
    const before = exportChecks()
    expect(render(['admin'])).toBe('<span>yes</span>')
    expect(render(['member'])).toBe('<span>role_missing</span>')
    // Each provider takes one snapshot when it is made; answering the context checks only the feature asked for,
    // not every feature again.
    expect(exportChecks()).toBe(before + 2)
    expect(() => renderToString(h(Probe, { roles: [] }))).toThrow(/EntitlementsProvider/)
  })

  it('answers a per-resource feature for the resource the component names', async () => {
    const { client, plans } = await setup()
    const resetsAt = Math.floor(Date.now() / 1000) + 86_400
    plans.set('acme', {
      plan: { id: 'ci' },
      features: {
        builds: {
          cap: { limit: 100, period: 'month', used: 10, resetsAt },
          per: { kind: 'repository', cap: { limit: 5 }, resources: { api: { cap: { used: 5 } } } },
        },
      },
    })
    await client.load('acme')
    const store = createEntitlementsStore(client, 'acme')
    const render = (repo: string) =>
      renderToString(
        h(
          EntitlementsProvider,
          { client, subject: 'acme', snapshot: store.getSnapshot() },
          h(Repo, { repo }),
        ),
      )
    expect(render('api')).toBe('<span>usage_cap_reached by the resource</span>')
    expect(render('web')).toBe('<span>build</span>')
  })

  it('shows a credit balance, and tells its listeners when the app spent or the server topped it up', async () => {
    const { client, plans } = await setup()
    const credits = (remaining: number) => ({
      plan: { id: 'ai' },
      features: { 'ai-completion': true },
      credits: {
        'ai-credits': {
          grants: [{ id: 'pack', remaining }],
          asOf: Date.now() / 1000,
          spent: 0,
          costs: { 'ai-completion': { amount: 5 } },
        },
      },
    })
    plans.set('acme', credits(100))
    await client.load('acme')
    const store = createEntitlementsStore(client, 'acme')
    let heard = 0
    const stop = store.subscribe(() => heard++)
    const render = () =>
      renderToString(
        h(EntitlementsProvider, { client, subject: 'acme', snapshot: store.getSnapshot() }, h(Left)),
      )
    expect(render()).toBe('<span>100 left</span>')
    const before = heard
    client.consumeSync('ai-completion', { subject: 'acme', amount: 3 })
    store.refresh()
    expect(heard).toBe(before + 1)
    expect(render()).toBe('<span>85 left</span>')
    // A top-up on the server: a new token, a change event, a new balance.
    plans.set('acme', credits(5085))
    await client.refresh('acme')
    expect(heard).toBe(before + 2)
    expect(store.getSnapshot().credits['ai-credits']?.grants[0]?.atSnapshot).toBe(5085)
    stop()
  })

  it('re-renders when a floating seat is acquired, and again when it is given back', async () => {
    const { client, plans, issuer } = await setup()
    plans.set('acme', {
      plan: { id: 'cad' },
      features: { draw: true },
      pools: { seats: { seats: 1, holder: 'machine', ttl: 60, heartbeat: 20 } },
      pool: 'seats',
    })
    // The same keys sign the license and the lease.
    msw.use(
      http.post(`${SERVER}/v1/leases`, async ({ request }) => {
        const body = (await request.json()) as { subject: string; pool: string; holder: string }
        const lease = await issuer.lease(body.pool, { subject: body.subject, holder: body.holder, id: 'l-1' })
        return HttpResponse.json({ lease, expiresIn: 60, heartbeat: 20 }, { status: 201 })
      }),
      http.delete(`${SERVER}/v1/leases/:id`, () => new HttpResponse(null, { status: 204 })),
    )
    await client.load('acme')
    const store = createEntitlementsStore(client, 'acme')
    const answer = () => store.getSnapshot().decisions.draw?.reason
    const rendered: Array<string | undefined> = []
    const stop = store.subscribe(() => rendered.push(answer()))
    expect(answer()).toBe('lease_required')
    const seat = await client.lease('seats', { subject: 'acme', holder: 'host-1' })
    expect(seat.acquired).toBe(true)
    // The listeners heard of the seat at once, with no change of the license.
    expect(rendered.at(-1)).toBe('granted')
    if (seat.acquired) await seat.release()
    expect(rendered.at(-1)).toBe('lease_required')
    stop()
  })
})
