// `npm run demo`: the whole loop on one machine. The reference license server starts on a free port with its
// SQLite file in a temporary folder; an order is placed through its signed order endpoint; the Express example app,
// guarded by the entitlements client, is called as a customer would call it. Purchase, token, check, usage,
// upgrade with no restart, usage counted once, revocation. Exits 0 and removes what it made.
import { createHmac } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createEntitlements, type EntitlementsClient, metering } from 'entitle'
import { createFileStorage } from 'entitle/node'
import { createApp } from '../express-app/app.js'
import { startLicenseServer } from '../license-server/src/start.js'

const say = (text = '') => console.log(text)
const step = (n: number, text: string) => say(`\n${n}. ${text}`)
const show = (label: string, value: string) => say(`   ${label.padEnd(44)} ${value}`)

export async function runDemo(): Promise<void> {
  const folder = mkdtempSync(join(tmpdir(), 'entitle-demo-'))
  const license = await startLicenseServer({
    db: join(folder, 'license.db'),
    port: 0,
  })
  let app: Server | undefined
  const entitlements = createEntitlements({
    server: { url: license.url, apiKey: license.serviceKey, events: true, revocationIntervalMs: 60_000 },
    keys: new URL('/.well-known/jwks.json', license.url),
    issuer: license.url,
    audience: 'acme-editor',
    storage: createFileStorage(join(folder, 'app-state')),
    usage: { flushIntervalMs: 1000 },
    metering,
  })
  try {
    say('entitle demo: a license server, an app that asks it, and a customer who buys, uses, upgrades')
    say(`(license server ${license.url}, SQLite in ${folder})`)

    // --- the order system places a purchase ---------------------------------------------------------------------
    step(1, 'Globex buys the Starter plan (5 API calls a month) through the signed order endpoint')
    const order = async (body: Record<string, unknown>) => {
      const raw = JSON.stringify(body)
      const t = Math.floor(Date.now() / 1000)
      const v1 = createHmac('sha256', license.orderSecret).update(`${t}.${raw}`).digest('hex')
      const response = await fetch(`${license.url}/v1/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'entitle-signature': `t=${t},v1=${v1}` },
        body: raw,
      })
      if (!response.ok) throw new Error(`order refused: ${response.status} ${await response.text()}`)
      return (await response.json()) as { license: { sku: string; seats: number } }
    }
    const bought = await order({
      orderId: 'crm-1001',
      type: 'purchase',
      customer: { id: 'globex', name: 'Globex Corporation' },
      sku: 'starter',
      seats: 3,
    })
    show('order crm-1001', `license ${bought.license.sku}, ${bought.license.seats} seats`)

    // --- the app -------------------------------------------------------------------------------------------------
    const server = createApp(entitlements).listen(0, '127.0.0.1')
    app = server
    await new Promise((resolve) => server.once('listening', resolve))
    const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const call = async (path: string) => {
      const response = await fetch(`${appUrl}${path}`, { headers: { 'x-customer-id': 'globex' } })
      return { status: response.status, body: (await response.json()) as Record<string, unknown> }
    }
    const verdict = (r: { status: number; body: Record<string, unknown> }) =>
      r.status === 200
        ? `200 ALLOWED`
        : `${r.status} DENIED  ${r.body.detail}${r.body.upgrade ? ` → upgrade: ${JSON.stringify(r.body.upgrade)}` : ''}`

    step(2, 'The Express app asks the entitlements client on every request')
    show('GET /api/reports/export (in the plan)', verdict(await call('/api/reports/export')))
    show('GET /api/sso/config (not in Starter)', verdict(await call('/api/sso/config')))

    step(3, 'Search is metered: each call is checked against the cap, then recorded')
    for (let i = 1; i <= 6; i++) {
      const r = await call('/api/search')
      show(
        `GET /api/search #${i}`,
        r.status === 200 ? `200 ALLOWED used ${r.body.used}/${r.body.limit}` : verdict(r),
      )
    }

    step(4, 'The usage reaches the license server, counted once')
    const flushed = await entitlements.flush()
    const usage = await usageReport(license)
    show('client flush', `${flushed.sent} line(s) sent, ${flushed.pending} pending`)
    show('server total for api-calls this month', String(usage.usage[0]?.total))

    step(
      5,
      'Globex upgrades to Business: the running app hears of it at once (Server-Sent Events), no restart',
    )
    const changed = new Promise<string>((resolve) =>
      entitlements.on('change', ({ subject, changes }) => {
        if (subject === 'globex')
          resolve(changes.map((c) => ('feature' in c ? `${c.type} ${c.feature}` : c.type)).join(', '))
      }),
    )
    await order({
      orderId: 'crm-1002',
      type: 'upgrade',
      customer: { id: 'globex' },
      sku: 'business',
      seats: 10,
    })
    show('change event in the app', await withTimeout(changed, 5000, 'no change event within 5 s'))
    show('GET /api/sso/config (now in the plan)', verdict(await call('/api/sso/config')))
    const search = await call('/api/search')
    show(
      'GET /api/search',
      `${search.status} ${search.status === 200 ? 'ALLOWED' : 'DENIED'} used ${search.body.used}/${search.body.limit}`,
    )

    await passSoftCap(entitlements, call, license, Number(search.body.used))
    await spendCredits(entitlements, call, order, license)

    step(8, 'The license is revoked (a chargeback): the app denies within moments')
    await fetch(`${license.url}/admin/customers/globex/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${license.adminKey}` },
    })
    const denied = await poll(async () => {
      const r = await call('/api/reports/export')
      return r.status === 200 ? undefined : r
    }, 5000)
    show('GET /api/reports/export', verdict(denied))

    say('\nWhere each part lives:')
    say('   license server (Hono, SQLite, Ed25519)   examples/license-server/src/app.ts, routes/, services/')
    say('   the catalog of plans                     examples/license-server/catalog.json')
    say('   the Express app                          examples/express-app/app.ts')
    say('   the SDK: verify, decide, cache, meter    src/core/, src/client/, src/usage/')
    say('   this story                               examples/demo/demo.ts')
    say('   the protocol and the server API          docs/client.md, docs/metering.md, docs/server.md')
  } finally {
    await entitlements.close({ deadlineMs: 1000 })
    if (app) {
      const closing = new Promise((resolve) => app?.close(resolve))
      app.closeAllConnections()
      await closing
    }
    await license.close()
    rmSync(folder, { recursive: true, force: true })
  }
}

type Call = (path: string) => Promise<{ status: number; body: Record<string, unknown> }>

interface UsageReport {
  usage: Array<{ metric: string; total: number; included?: number; overage?: number }>
  alerts: Array<{ threshold: number; total: number }>
}

/** What the license server's admin API says Globex used, and the usage alerts it recorded. */
async function usageReport(license: { url: string; adminKey: string }): Promise<UsageReport> {
  const response = await fetch(`${license.url}/admin/customers/globex/usage`, {
    headers: { authorization: `Bearer ${license.adminKey}` },
  })
  return (await response.json()) as UsageReport
}

/** Step 6: Globex passes Business's soft cap: allowed and billed as overage, alerted in the app and on the server. */
async function passSoftCap(
  entitlements: EntitlementsClient,
  call: Call,
  license: { url: string; adminKey: string },
  used: number,
): Promise<void> {
  step(
    6,
    'Business includes 100,000 API calls a month and allows up to 120,000, billed as overage; alerts at 80% and 100%',
  )
  const alerts: string[] = []
  entitlements.on('threshold', ({ subject, feature, threshold, used, limit }) =>
    alerts.push(`${subject} ${feature} reached ${threshold}% (${used} of ${limit})`),
  )
  // A month's traffic from elsewhere in the app (a batch import), recorded as one amount.
  entitlements.record('api-calls', 99_998 - used, { subject: 'globex' })
  show('recorded by a batch import', `${99_998 - used} API calls (now 99998 of 100000)`)
  for (let i = 1; i <= 4; i++) {
    const r = await call('/api/search')
    const billed = r.body.overage === undefined ? '' : `, ${r.body.overage} billed as overage`
    show(
      `GET /api/search (call ${99_998 + i})`,
      `${r.status} ALLOWED used ${r.body.used}/${r.body.limit}${billed}`,
    )
  }
  for (const alert of alerts) show('threshold event in the app', alert)
  await entitlements.flush()
  const report = await usageReport(license)
  const month = report.usage.find((row) => row.metric === 'api-calls')
  show('server: this month', `${month?.total} calls, ${month?.included} included, ${month?.overage} overage`)
  for (const alert of report.alerts)
    show(`server: alert recorded once`, `${alert.threshold}% at ${alert.total} calls`)
}

type Order = (body: Record<string, unknown>) => Promise<unknown>

/** Step 7: AI credits: spent down to nothing, then a top-up that the running app hears of at once. */
async function spendCredits(
  entitlements: EntitlementsClient,
  call: Call,
  order: Order,
  license: { url: string; adminKey: string },
): Promise<void> {
  step(7, 'Globex adds AI studio: 1,000 AI credits a month, 5 a completion; spends them, then tops up 5,000')
  const heard = (kind: string) =>
    new Promise<string>((resolve) => {
      const stop = entitlements.on('change', ({ subject, changes }) => {
        const found = changes.find((c) => c.type === kind)
        if (subject !== 'globex' || found === undefined) return
        stop()
        resolve(
          changes
            .map((c) =>
              'feature' in c
                ? `${c.type} ${c.feature}`
                : 'credits' in c
                  ? `${c.type} ${c.credits} ${c.from ?? 0} → ${c.to}`
                  : c.type,
            )
            .join(', '),
        )
      })
    })
  const added = heard('credits_changed')
  await order({
    orderId: 'crm-1003',
    type: 'upgrade',
    customer: { id: 'globex' },
    sku: 'business',
    seats: 10,
    addons: ['ai-studio'],
  })
  show('change event in the app', await withTimeout(added, 5000, 'no change event within 5 s'))
  let spent = 0
  let last = await call('/api/ai/complete')
  while (last.status === 200 && spent < 1000) {
    spent++
    last = await call('/api/ai/complete')
  }
  show(
    'GET /api/ai/complete, until refused',
    `${spent} completions, then ${last.status} DENIED  ${last.body.detail}`,
  )
  const topped = heard('credits_changed')
  await order({ orderId: 'crm-1004', type: 'topup', customer: { id: 'globex' }, pack: 'ai-credits-5000' })
  show(
    'top-up crm-1004: change event in the app',
    await withTimeout(topped, 5000, 'no change event within 5 s'),
  )
  const after = await call('/api/ai/complete')
  show('GET /api/ai/complete', `${after.status} ALLOWED, ${after.body.creditsLeft} credits left`)
  await entitlements.flush()
  const response = await fetch(`${license.url}/admin/customers/globex/credits`, {
    headers: { authorization: `Bearer ${license.adminKey}` },
  })
  const ledger = (await response.json()) as { balances: Record<string, { spent: number; available: number }> }
  const credits = ledger.balances['ai-credits']!
  show('server ledger', `${credits.spent} spent, ${credits.available} available`)
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(message)), ms).unref()),
  ])
}

async function poll<T>(attempt: () => Promise<T | undefined>, ms: number): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    const result = await attempt()
    if (result !== undefined) return result
    if (Date.now() > until) throw new Error(`nothing changed within ${ms} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

await runDemo()
