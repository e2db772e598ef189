import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { build } from 'esbuild'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, describe, expect, it } from 'vitest'
import { createTestIssuer } from '../../src/testing.js'

// A page that records `n` units (from its query string) and keeps its journal in localStorage, as an app would.
const TAB_APP = `
import { createEntitlements, metering } from 'entitle'
import { createLocalStorage } from 'entitle/browser'
const client = createEntitlements({
  metering,
  token: async () => (await fetch('/license')).text(),
  keys: new URL('/.well-known/jwks.json', location.origin),
  issuer: 'https://license.example.com',
  audience: 'acme-editor',
  storage: createLocalStorage(),
  usage: { url: location.origin, flushIntervalMs: 200, persistIntervalMs: 100 },
})
await client.load()
const n = Number(new URLSearchParams(location.search).get('n') ?? 0)
for (let i = 0; i < n; i++) client.record('api-calls', 1)
document.title = 'ready'
`

describe('two tabs of one origin on one localStorage', () => {
  let browser: Browser | undefined
  let server: Server | undefined
  afterAll(async () => {
    await browser?.close()
    server?.closeAllConnections()
    server?.close()
  })

  it('each keeps a journal of its own; a tab that closed during an outage is taken over by the next, and all 100 units arrive once', async () => {
    const issuer = await createTestIssuer({ issuer: 'https://license.example.com', audience: 'acme-editor' })
    const license = await issuer.issue({ features: { 'api-calls': true } })
    const bundle = await build({
      stdin: { contents: TAB_APP, resolveDir: process.cwd(), loader: 'ts' },
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
    })
    const app = bundle.outputFiles[0]!.text
    const lines = new Map<string, number>()
    let received = 0
    let down = true
    server = createServer(async (req, res) => {
      const send = (type: string, body: string) => res.writeHead(200, { 'content-type': type }).end(body)
      const path = (req.url ?? '/').split('?')[0]
      if (path === '/') return send('text/html', '<script type="module" src="/app.js"></script>')
      if (path === '/app.js') return send('text/javascript', app)
      if (path === '/.well-known/jwks.json') return send('application/json', JSON.stringify(issuer.jwks))
      if (path === '/license') return send('application/entitlement+jwt', license)
      if (path === '/v1/usage' && req.method === 'POST') {
        let text = ''
        for await (const chunk of req) text += chunk
        if (down) return res.writeHead(503).end()
        for (const line of JSON.parse(text).lines as Array<{ id: string; amount: number }>) {
          received += line.amount
          if (!lines.has(line.id)) lines.set(line.id, line.amount)
        }
        return send('application/json', JSON.stringify({ at: Date.now() }))
      }
      res.writeHead(404).end()
    })
    const listening = server
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
    const context = await browser.newContext()
    const errors: string[] = []
    const open = async (n: number) => {
      const page = await context.newPage()
      page.on('pageerror', (error) => errors.push(error.message))
      await page.goto(`${base}/?n=${n}`)
      await page.waitForFunction(() => document.title === 'ready')
      return page
    }
    const journals = (page: Awaited<ReturnType<typeof open>>) =>
      page.evaluate(
        () => Object.keys(localStorage).filter((key) => key.startsWith('entitle/entitle:usage:')).length,
      )

    // The outage: two tabs record 50 each; each journals under a key of its own.
    const first = await open(50)
    const second = await open(50)
    for (let waited = 0; (await journals(first)) < 2 && waited < 10_000; waited += 50)
      await new Promise((r) => setTimeout(r, 50))
    expect(await journals(first)).toBe(2)
    // The second tab closes while the server is still down; then the server comes back and a third tab opens.
    await second.close()
    down = false
    const third = await open(0)
    const total = () => [...lines.values()].reduce((sum, amount) => sum + amount, 0)
    for (let waited = 0; total() < 100 && waited < 15_000; waited += 50)
      await new Promise((r) => setTimeout(r, 50))
    expect(total()).toBe(100)
    // The first tab still runs: it sent its own; the third sent the closed tab's, once.
    await new Promise((r) => setTimeout(r, 500))
    expect(received).toBe(100)
    expect(errors).toEqual([])
    await first.close()
    await third.close()
  })
})
