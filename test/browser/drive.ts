import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { build } from 'esbuild'
import { type Browser, chromium } from 'playwright-core'
import { createTestIssuer } from '../../src/testing.js'

/**
 * The browser example, bundled from the built package as an app's bundler would, served on loopback, and driven in
 * Debian's Chromium (installed by .ci/run): WebCrypto verification, localStorage, usage sent on pagehide. Returns
 * what the page showed and what reached the server.
 */
export async function driveBrowserExample() {
  let browser: Browser | undefined
  let server: Server | undefined
  const usage = new Map<string, number>()
  try {
    const issuer = await createTestIssuer({ issuer: 'https://license.example.com', audience: 'acme-editor' })
    const resetsAt = Math.floor(Date.now() / 1000) + 86_400
    const license = await issuer.issue({
      plan: { id: 'starter' },
      features: { export: true, 'api-calls': { cap: { limit: 5, period: 'month', used: 1, resetsAt } } },
      upgrades: { sso: { plan: 'business' } },
    })
    const bundle = await build({
      entryPoints: ['examples/browser/app.ts'],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      minify: true,
      write: false,
    })
    const app = bundle.outputFiles[0]!.text
    server = createServer(async (req, res) => {
      const send = (type: string, body: string) => res.writeHead(200, { 'content-type': type }).end(body)
      if (req.url === '/') return send('text/html', readFileSync('examples/browser/index.html', 'utf8'))
      if (req.url === '/app.js') return send('text/javascript', app)
      if (req.url === '/.well-known/jwks.json') return send('application/json', JSON.stringify(issuer.jwks))
      if (req.url === '/license') return send('application/entitlement+jwt', license)
      if (req.url === '/v1/usage' && req.method === 'POST') {
        let text = ''
        for await (const chunk of req) text += chunk
        for (const line of JSON.parse(text).lines as Array<{ id: string; amount: number }>)
          usage.set(line.id, line.amount)
        return send('application/json', JSON.stringify({ at: Date.now() }))
      }
      res.writeHead(404).end()
    })
    const listening = server
    await new Promise<void>((resolve) => listening.listen(0, '127.0.0.1', resolve))
    const base = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (error) => errors.push(error.message))
    await page.goto(base)
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'starter')
    const shown = {
      export: await page.textContent('#export'),
      sso: await page.textContent('#sso'),
      apiCalls: await page.textContent('#api-calls'),
    }
    for (let i = 0; i < 3; i++) await page.click('#search')
    await page.waitForFunction(() => document.getElementById('api-calls')?.textContent === 'allowed, 1 left')
    const stored = await page.evaluate(() =>
      Object.keys(localStorage).filter((key) => key.startsWith('entitle/')),
    )
    const sentBeforeLeaving = usage.size
    // Leaving the page fires pagehide: the usage goes out with keepalive.
    await page.goto('about:blank')
    const total = () => [...usage.values()].reduce((sum, amount) => sum + amount, 0)
    for (let waited = 0; total() < 3 && waited < 10_000; waited += 50)
      await new Promise((r) => setTimeout(r, 50))
    await page.close()
    return { shown, stored, sentBeforeLeaving, usageAfterLeaving: total(), errors }
  } finally {
    await browser?.close()
    server?.closeAllConnections()
    server?.close()
  }
}
