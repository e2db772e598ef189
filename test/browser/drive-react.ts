import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { type Browser, chromium } from 'playwright-core'
import { createEntitlements, type EntitlementsClient } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'

const ISSUER = 'https://license.example.com'
const AUDIENCE = 'acme-editor'

/**
 * A React of the given major: 19 is the repository's; 18 is `test/fixtures/react18`'s, a project of its own with
 * its own lock file, installed here with `npm ci` as an app on React 18 would have it. It cannot be a dev
 * dependency under an alias, as Express 4 is: react-dom 18's peer is react 18, and a peer must sit beside the
 * repository's react 19 (npm refuses the install; overrides do not move a peer).
 */
export function reactInstall(major: 18 | 19): string {
  if (major === 19) return resolve('node_modules')
  const dir = resolve('test/fixtures/react18')
  execFileSync('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts'], {
    cwd: dir,
    stdio: 'ignore',
  })
  return join(dir, 'node_modules')
}

/** Bundles `entry` (from the built package, as an app's bundler would) with React taken from `modules`. */
async function bundle(entry: string, modules: string, platform: 'browser' | 'node'): Promise<string> {
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    format: 'esm',
    platform,
    target: 'es2022',
    write: false,
    minify: platform === 'browser',
    alias: { react: join(modules, 'react'), 'react-dom': join(modules, 'react-dom') },
    ...(platform === 'node' ? { packages: 'bundle' as const, external: ['jose', 'lru-cache'] } : {}),
    define: { 'process.env.NODE_ENV': '"production"' },
  })
  return result.outputFiles[0]!.text
}

/**
 * The React example, rendered on a server from a snapshot and hydrated in Debian's Chromium: what the server
 * rendered, whether hydration complained, and what the page shows after the server pushes an upgrade.
 */
export async function driveReactExample(major: 18 | 19, modules: string) {
  let browser: Browser | undefined
  let server: Server | undefined
  let serverClient: EntitlementsClient | undefined
  const streams = new Set<ServerResponse>()
  try {
    const issuer = await createTestIssuer({ issuer: ISSUER, audience: AUDIENCE })
    const starter = {
      plan: { id: 'starter' },
      features: { export: true as const },
      upgrades: { sso: { plan: 'business' } },
    }
    let license = await issuer.issue(starter, { subject: 'acme' })
    const app = await bundle('examples/react/app.ts', modules, 'browser')
    const renderer = join(mkdtempSync(join(tmpdir(), 'entitle-ssr-')), 'render.mjs')
    mkdirSync(join(renderer, '..'), { recursive: true })
    writeFileSync(renderer, await bundle('examples/react/render.ts', modules, 'node'))
    const { renderPage } = (await import(pathToFileURL(renderer).href)) as {
      renderPage: (client: EntitlementsClient) => Promise<string>
    }
    // The page's server checks the same license with a client of its own, and renders from its snapshot.
    const ssrClient = () =>
      createEntitlements({ token: license, keys: issuer.jwks, issuer: ISSUER, audience: AUDIENCE })
    let rendered = ''
    server = createServer(async (req, res) => {
      const send = (type: string, body: string) => res.writeHead(200, { 'content-type': type }).end(body)
      if (req.url === '/') {
        await serverClient?.close()
        serverClient = ssrClient()
        rendered = await renderPage(serverClient)
        return send('text/html', rendered)
      }
      if (req.url === '/app.js') return send('text/javascript', app)
      if (req.url === '/favicon.ico') return res.writeHead(204).end()
      if (req.url === '/.well-known/jwks.json') return send('application/json', JSON.stringify(issuer.jwks))
      if (req.url === '/license') return send('application/entitlement+jwt', license)
      if (req.url === '/events') {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' })
        res.write(': open\n\n')
        streams.add(res)
        req.on('close', () => streams.delete(res))
        return
      }
      res.writeHead(404).end()
    })
    const listening = server
    await new Promise<void>((done) => listening.listen(0, '127.0.0.1', done))
    const base = `http://127.0.0.1:${(listening.address() as AddressInfo).port}`
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
    const page = await browser.newPage()
    const errors: string[] = []
    page.on('pageerror', (error) => errors.push(error.message))
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') errors.push(message.text())
    })
    await page.goto(base)
    const text = (id: string) => page.textContent(`#${id}`)
    const beforeUpgrade = { plan: await text('plan'), export: await text('export'), sso: await text('sso') }
    // The page must not reload: a mark set now has to survive the upgrade.
    await page.evaluate(() => {
      ;(window as unknown as { mark: number }).mark = 1
    })
    // Wait until the browser's client holds its own verified license (its token is in localStorage).
    await page.waitForFunction(() => Object.keys(localStorage).some((key) => key.includes('entitle:token:')))
    await new Promise((done) => setTimeout(done, 200))
    const hydrated = { plan: await text('plan'), sso: await text('sso') }

    license = await issuer.issue(
      { plan: { id: 'business' }, features: { export: true, sso: true } },
      { subject: 'acme' },
    )
    for (const stream of streams) stream.write('event: license\ndata: {}\n\n')
    await page.waitForFunction(() => document.getElementById('sso')?.textContent === 'on', undefined, {
      timeout: 10_000,
    })
    const afterUpgrade = {
      plan: await text('plan'),
      sso: await text('sso'),
      reloaded: (await page.evaluate(() => (window as unknown as { mark?: number }).mark)) !== 1,
    }
    await page.close()
    // Which React each bundle holds: react and react-dom both carry their version.
    const versions = (code: string) => [...new Set(code.match(/(?<=")1[89]\.\d+\.\d+(?=")/g))]
    const reactVersions = { browser: versions(app), server: versions(readFileSync(renderer, 'utf8')) }
    return { major, rendered, beforeUpgrade, hydrated, afterUpgrade, errors, reactVersions }
  } finally {
    for (const stream of streams) stream.end()
    await browser?.close()
    await serverClient?.close()
    server?.closeAllConnections()
    server?.close()
  }
}
