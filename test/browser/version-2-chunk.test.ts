import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { build } from 'esbuild'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTestIssuer } from '../../src/testing.js'

// A page bundled from the built package as an app's bundler splits it (esbuild, `splitting`), served on loopback and
// run in Debian's Chromium: what the page fetches is what a user's browser fetches. Format version 2's code is a
// chunk the verifier imports at the first token that says any of it.

const ISSUER = 'https://license.example.com'
const AUDIENCE = 'acme-editor'
const CHUNK = /^\/version-2-[^/]*\.js$/

let browser: Browser
let server: Server
let base: string
/** Every path the page asked for, in order. */
const requested: string[] = []
/** How many requests for the chunk answer 503 before it is served: a page that lost its connection. */
let chunkFailures = 0

beforeAll(async () => {
  const issuer = await createTestIssuer({ issuer: ISSUER, audience: AUDIENCE })
  const tokens: Record<string, string> = {
    '/v1': await issuer.issue({ plan: { id: 'team' }, features: { export: true, seats: { limit: 3 } } }),
    '/v2': await issuer.issue({
      plan: { id: 'team' },
      features: { export: true, builds: { per: { kind: 'repository', limit: 2 } } },
    }),
  }
  const bundle = await build({
    stdin: {
      // The key set by its URL, as the docs recommend: the verifier fetches and caches it.
      contents: `import { createEntitlementVerifier, decide } from 'entitle'
const keys = new URL('/.well-known/jwks.json', location.href)
const verifier = createEntitlementVerifier({ keys, issuer: ${JSON.stringify(ISSUER)}, audience: ${JSON.stringify(AUDIENCE)} })
window.check = async (path, feature, context) => {
  try {
    const entitlements = await verifier.verify(await (await fetch(path)).text())
    return decide(entitlements, feature, context, Date.now()).reason
  } catch (error) {
    return 'error: ' + error.code
  }
}
window.ready = true`,
      resolveDir: process.cwd(),
      sourcefile: 'page.js',
    },
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    write: false,
    outdir: join(process.cwd(), '.page-out'),
    entryNames: 'page',
  })
  const files = new Map(bundle.outputFiles.map((file) => [`/${file.path.split('/').pop()}`, file.text]))
  server = createServer((req, res) => {
    const path = req.url ?? '/'
    requested.push(path)
    const send = (type: string, body: string) => res.writeHead(200, { 'content-type': type }).end(body)
    if (path === '/')
      return send('text/html', '<!doctype html><script type="module" src="/page.js"></script>')
    if (path === '/.well-known/jwks.json') return send('application/json', JSON.stringify(issuer.jwks))
    if (tokens[path] !== undefined) return send('application/entitlement+jwt', tokens[path]!)
    if (CHUNK.test(path) && chunkFailures > 0) {
      chunkFailures--
      return res.writeHead(503).end()
    }
    const file = files.get(path)
    if (file !== undefined) return send('text/javascript', file)
    res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
}, 60_000)

afterAll(async () => {
  await browser?.close()
  server?.closeAllConnections()
  server?.close()
})

async function openPage() {
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  await page.goto(base)
  await page.waitForFunction(() => (window as unknown as { ready?: boolean }).ready === true)
  const check = (path: string, feature: string, context: object) =>
    page.evaluate(
      ([p, f, c]) => (window as unknown as { check: (...args: unknown[]) => Promise<string> }).check(p, f, c),
      [path, feature, context] as const,
    )
  return { page, errors, check }
}

const chunkRequests = () => requested.filter((path) => CHUNK.test(path)).length

describe("format version 2's chunk in Chromium", () => {
  it('is never fetched by a page whose tokens are v: 1, and is fetched once at the first v: 2 token', async () => {
    requested.length = 0
    const { page, errors, check } = await openPage()
    expect(await check('/v1', 'seats', { usage: 2 })).toBe('granted')
    expect(await check('/v1', 'seats', { usage: 3 })).toBe('limit_exceeded')
    expect(chunkRequests()).toBe(0)
    expect(await check('/v2', 'builds', { usage: 1, resource: 'repository:web' })).toBe('granted')
    expect(await check('/v2', 'builds', { usage: 2, resource: 'repository:web' })).toBe('limit_exceeded')
    expect(chunkRequests()).toBe(1)
    expect(errors).toEqual([])
    await page.close()
  })

  it('refuses a v: 2 token with server_unavailable while the chunk cannot be fetched, and verifies it once it can', async () => {
    requested.length = 0
    chunkFailures = 1
    const { page, errors, check } = await openPage()
    expect(await check('/v2', 'builds', { usage: 1, resource: 'repository:web' })).toBe(
      'error: server_unavailable',
    )
    expect(chunkRequests()).toBe(1)
    // The v: 1 token needs no chunk: it verifies meanwhile.
    expect(await check('/v1', 'export', {})).toBe('granted')
    const retried = await check('/v2', 'builds', { usage: 1, resource: 'repository:web' })
    expect({ retried, chunkRequests: chunkRequests() }).toEqual({ retried: 'granted', chunkRequests: 2 })
    expect(errors).toEqual([])
    await page.close()
  })
})
