// Places a signed order with the reference license server (`npm run order -- --customer acme --sku team`), as a
// CRM, ERP or payment system would: the body signed with the order secret (HMAC-SHA256 of "t.body").
import { createHmac, randomUUID } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { loadSecrets } from './secrets.js'
import { DEFAULT_DATA_DIR } from './start.js'

const HELP = `npm run order -- --customer ID [--sku SKU] [options]

  --type TYPE        purchase (default), upgrade, downgrade, renewal, cancellation, topup
  --customer ID      the customer (letters, digits, . _ : -)
  --name NAME        the customer's name, on a purchase
  --sku SKU          the plan (catalog.json), e.g. starter, team, business
  --seats N          seats
  --addon NAME       an add-on; repeat for more
  --term-months N    the paid term (default 12)
  --trial-days N     start the purchase as a trial of N days; a later purchase converts it
  --pack SKU         a top-up's credit pack (catalog packs), e.g. ai-credits-5000
  --quantity N       how many packs (default 1)
  --order-id ID      the order's id, for idempotency (default: a new one)
  --server URL       the license server (default $ENTITLE_SERVER_URL, else http://127.0.0.1:8787)
  --data DIR         where the server keeps secrets.env (default .license-server); ENTITLE_ORDER_SECRET wins

Exit status: 0 placed, 1 refused by the server, 2 bad arguments, 3 no server answered.`

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      type: { type: 'string', default: 'purchase' },
      customer: { type: 'string' },
      name: { type: 'string' },
      sku: { type: 'string' },
      seats: { type: 'string' },
      addon: { type: 'string', multiple: true },
      'term-months': { type: 'string' },
      'trial-days': { type: 'string' },
      pack: { type: 'string' },
      quantity: { type: 'string' },
      'order-id': { type: 'string' },
      server: { type: 'string', default: process.env.ENTITLE_SERVER_URL ?? 'http://127.0.0.1:8787' },
      data: { type: 'string', default: process.env.ENTITLE_DATA_DIR ?? DEFAULT_DATA_DIR },
      help: { type: 'boolean', default: false },
    },
  })
  if (values.help) {
    console.log(HELP)
    return 0
  }
  if (values.customer === undefined) {
    console.error(`--customer is required\n\n${HELP}`)
    return 2
  }
  const number = (flag: string, value: string | undefined) => {
    if (value === undefined) return undefined
    if (!/^\d+$/.test(value)) throw new Error(`${flag} needs a whole number (got ${value})`)
    return Number(value)
  }
  const order = {
    orderId: values['order-id'] ?? `cli-${randomUUID()}`,
    type: values.type,
    customer: { id: values.customer, ...(values.name ? { name: values.name } : {}) },
    ...(values.sku ? { sku: values.sku } : {}),
    ...(values.seats ? { seats: number('--seats', values.seats) } : {}),
    ...(values.addon ? { addons: values.addon } : {}),
    ...(values['term-months'] ? { termMonths: number('--term-months', values['term-months']) } : {}),
    ...(values['trial-days'] ? { trialDays: number('--trial-days', values['trial-days']) } : {}),
    ...(values.pack ? { pack: values.pack } : {}),
    ...(values.quantity ? { quantity: number('--quantity', values.quantity) } : {}),
  }
  if (process.env.ENTITLE_ORDER_SECRET === undefined && !existsSync(join(values.data, 'secrets.env'))) {
    console.error(
      `no ${join(values.data, 'secrets.env')}: start the server first (npm run server), or set ENTITLE_ORDER_SECRET`,
    )
    return 2
  }
  const secret = process.env.ENTITLE_ORDER_SECRET ?? loadSecrets(values.data).orderSecret
  const body = JSON.stringify(order)
  const t = Math.floor(Date.now() / 1000)
  const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')
  const url = new URL('/v1/orders', values.server)
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'entitle-signature': `t=${t},v1=${v1}` },
    body,
  }).catch((error: unknown) => {
    const cause = (error as { cause?: { code?: string } }).cause?.code ?? String(error)
    console.error(
      `no license server answered at ${url.origin} (${cause}): start one with npm run server, or pass --server URL`,
    )
    return undefined
  })
  if (response === undefined) return 3
  const answer = await response.text()
  const out = response.ok ? console.log : console.error
  try {
    out(JSON.stringify(JSON.parse(answer), null, 2))
  } catch {
    out(answer)
  }
  return response.ok ? 0 : 1
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error)
    process.exit(2)
  },
)
