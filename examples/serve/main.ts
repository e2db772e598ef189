// `npm run example:browser`, `example:react`, `example:express`: one example app, by hand. Starts the reference
// license server (SQLite in a temporary folder), buys acme the Starter plan, starts the example on a port, prints
// the URL to open and what to try (an upgrade with `npm run order` reaches the running page), and stops cleanly on
// Ctrl-C, removing what it made.
import { createHmac } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createEntitlements, type EntitlementsClient, metering } from 'entitle'
import { build } from 'esbuild'
import { createApp } from '../express-app/app.js'
import { startLicenseServer } from '../license-server/src/start.js'
import { renderPage } from '../react/render.js'

// The browser examples verify tokens for this issuer and audience: the license server signs as it.
const ISSUER = 'https://license.example.com'
const AUDIENCE = 'acme-editor'
const EXAMPLES = ['browser', 'react', 'express'] as const
type Example = (typeof EXAMPLES)[number]

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { port: { type: 'string', default: '5173' } },
  })
  const which = positionals[0] as Example
  if (!EXAMPLES.includes(which)) throw new Error(`which example? ${EXAMPLES.join(', ')}`)
  const folder = mkdtempSync(join(tmpdir(), 'entitle-example-'))
  const license = await startLicenseServer({ dataDir: folder, port: 0, issuer: ISSUER, audience: AUDIENCE })
  const service = { authorization: `Bearer ${license.serviceKey}` }
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
  }
  await order({ orderId: 'example-acme', type: 'purchase', customer: { id: 'acme' }, sku: 'starter' })
  // The app's server asks the license server for every customer; a page asks the app's server for its own.
  const client = createEntitlements({
    server: { url: license.url, apiKey: license.serviceKey, events: true },
    keys: new URL('/.well-known/jwks.json', license.url),
    issuer: ISSUER,
    audience: AUDIENCE,
    usage: { flushIntervalMs: 1000 },
    metering,
  })
  const app = which === 'express' ? createApp(client) : await pageServer(which, client, license.url, service)
  const server: Server = app.listen(Number(values.port), '127.0.0.1')
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  console.log(`entitle ${which} example: open ${url}`)
  console.log(`  license server ${license.url} (SQLite in ${folder}); acme holds the Starter plan`)
  if (which === 'express')
    for (const path of ['/api/reports/export', '/api/sso/config', '/api/search'])
      console.log(`  try: curl -H 'x-customer-id: acme' ${url}${path}`)
  console.log(
    `  upgrade acme while it runs: npm run order -- --type upgrade --customer acme --sku business --server ${license.url} --data ${folder}`,
  )
  if (which === 'browser')
    console.log('  (the page holds its license until its next refresh: reload it to see an upgrade)')
  console.log('  Ctrl-C stops it')
  const stop = async () => {
    server.closeAllConnections()
    server.close()
    await client.close({ deadlineMs: 1000 })
    await license.close()
    rmSync(folder, { recursive: true, force: true })
    console.log('stopped')
    process.exit(0)
  }
  process.once('SIGINT', () => void stop())
  process.once('SIGTERM', () => void stop())
}

/** The page's own server for the browser and React examples: the page, its bundle, its license, its usage. */
async function pageServer(
  which: 'browser' | 'react',
  client: EntitlementsClient,
  licenseServer: string,
  service: Record<string, string>,
) {
  const bundle = await build({
    entryPoints: [`examples/${which}/app.ts`],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    define: { 'process.env.NODE_ENV': '"development"' },
  })
  const script = bundle.outputFiles[0]!.text
  const streams = new Set<ServerResponse>()
  // An upgrade heard by the app's server tells the page, which fetches its new license at once.
  client.on('change', () => {
    for (const stream of streams) stream.write('event: license\ndata: {}\n\n')
  })
  const forward = async (path: string, req: IncomingMessage, res: ServerResponse) => {
    let body = ''
    for await (const chunk of req) body += chunk
    const answer = await fetch(`${licenseServer}${path}`, {
      method: req.method,
      headers: { ...service, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body } : {}),
    })
    res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'text/plain' })
    res.end(await answer.text())
  }
  return createServer(async (req, res) => {
    const send = (type: string, text: string) => res.writeHead(200, { 'content-type': type }).end(text)
    const path = (req.url ?? '/').split('?')[0]
    try {
      if (path === '/')
        return which === 'react'
          ? send('text/html', await renderPage(client, 'acme'))
          : send('text/html', readFileSync('examples/browser/index.html', 'utf8'))
      if (path === '/app.js') return send('text/javascript', script)
      if (path === '/license') return await forward('/v1/entitlements/acme', req, res)
      if (path === '/.well-known/jwks.json') return await forward(path, req, res)
      if (path === '/v1/usage') return await forward(path, req, res)
      if (path === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
        res.write(': open\n\n')
        streams.add(res)
        req.on('close', () => streams.delete(res))
        return
      }
      res.writeHead(404).end()
    } catch (error) {
      res.writeHead(502, { 'content-type': 'text/plain' }).end(String(error))
    }
  })
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const { code } = error as { code?: unknown }
  console.error(
    code === 'EADDRINUSE'
      ? 'the port is taken: pick another with --port (npm run example:browser -- --port 5174)'
      : error instanceof Error
        ? error.message
        : error,
  )
  process.exit(1)
})
