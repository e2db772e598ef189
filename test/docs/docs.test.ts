import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createTestIssuer } from '../../src/testing.js'

const PAGES = [
  'README.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

interface Block {
  page: string
  lang: string
  code: string
  example: string | undefined
}

/** Every fenced block of a Markdown page, with the `<!-- example: PATH -->` marker above it, if any. */
function blocks(page: string): Block[] {
  const lines = readFileSync(page, 'utf8').split('\n')
  const found: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)$/.exec(lines[i]!)
    if (!open) continue
    const end = lines.indexOf('```', i + 1)
    const marker = /^<!-- example: (\S+) -->$/.exec(lines[i - 1] ?? '')
    found.push({ page, lang: open[1]!, code: lines.slice(i + 1, end).join('\n'), example: marker?.[1] })
    i = end
  }
  return found
}

const all = PAGES.flatMap(blocks)
const code = all.filter((b) => ['ts', 'js', 'typescript', 'javascript', 'mjs'].includes(b.lang))

/**
 * A loopback license server speaking protocol v1 for a docs example: its keys, an empty revocation list and an idle
 * event stream; `handle` answers everything else. Sets LICENSE_SERVER_URL for the example to import.
 */
async function loopbackLicenseServer(
  issuer: Awaited<ReturnType<typeof createTestIssuer>>,
  handle: (req: IncomingMessage, res: ServerResponse) => unknown,
) {
  const server = createServer(async (req, res) => {
    if (req.url === '/.well-known/jwks.json')
      return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(issuer.jwks))
    if (req.url === '/v1/revocations')
      return res.writeHead(200, { 'content-type': 'application/json' }).end('{"revoked":[]}')
    if (req.url === '/v1/events')
      return res.writeHead(200, { 'content-type': 'text/event-stream' }).write(': hello\n\n')
    await handle(req, res)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  process.env.LICENSE_SERVER_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    close() {
      server.closeAllConnections()
      server.close()
    },
  }
}

/** Every example a docs block mirrors, and how this test runs it. */
const RUNS: Record<string, () => Promise<void>> = {
  'examples/readme/guard-route.ts': async () => {
    const issuer = await createTestIssuer({ issuer: 'https://license.example.com', audience: 'my-app' })
    const jwks = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(issuer.jwks)),
    )
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve))
    process.env.LICENSE_JWKS_URL = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`
    const { app } = await import('../../examples/readme/guard-route.js')
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/reports/export`
    try {
      const pro = await issuer.issue(
        { plan: { id: 'pro' }, features: { export: true } },
        { subject: 'globex' },
      )
      const free = await issuer.issue(
        { plan: { id: 'free' }, features: {}, upgrade: { plan: 'pro', url: 'https://example.com/up' } },
        { subject: 'globex' },
      )
      const call = (token: string, customer = 'globex') =>
        fetch(base, { headers: { 'x-entitlement-token': token, 'x-customer-id': customer } })

      const allowed = await call(pro)
      expect(allowed.status).toBe(200)
      expect(await allowed.json()).toEqual({ exported: true, plan: 'pro' })

      const denied = await call(free)
      expect(denied.status).toBe(403)
      expect(denied.headers.get('content-type')).toMatch(/^application\/problem\+json/)
      expect(await denied.json()).toMatchObject({ detail: 'not_in_plan', upgrade: { plan: 'pro' } })

      expect(await (await call(pro, 'initech')).json()).toMatchObject({ detail: 'subject_mismatch' })
      for (const bad of ['', 'garbage', `${pro}x`, 'a.b.c', 'x'.repeat(10_000)]) {
        const response = await call(bad)
        expect(response.status).toBe(403)
        expect((await response.json()).detail).toBe('token_invalid')
      }
      expect((await fetch(base)).status).toBe(403)
    } finally {
      server.close()
      jwks.close()
    }
  },
  'examples/docs/client.ts': async () => {
    // A loopback license server speaking protocol v1: keys, tokens, revocations, and an event stream.
    const issuer = await createTestIssuer({ issuer: 'https://license.example.com', audience: 'my-app' })
    const seen: string[] = []
    const licenseServer = await loopbackLicenseServer(issuer, async (req, res) => {
      seen.push(`${req.url} ${req.headers.authorization ?? ''}`)
      const subject = /^\/v1\/entitlements\/(.+)$/.exec(req.url ?? '')?.[1]
      if (subject !== 'acme') return res.writeHead(404).end()
      const token = await issuer.issue(
        { plan: { id: 'team' }, features: { export: { roles: ['admin'] } } },
        { subject },
      )
      res.writeHead(200, { 'content-type': 'application/entitlement+jwt' }).end(token)
    })
    process.env.LICENSE_API_KEY = 'sk_docs'
    process.env.ENTITLE_STATE_DIR = mkdtempSync(join(tmpdir(), 'entitle-docs-state-'))
    const { canExport, entitlements } = await import('../../examples/docs/client.js')
    try {
      expect(await canExport('acme', ['admin'])).toBe(true)
      expect(await canExport('acme', ['viewer'])).toBe(false)
      expect(await canExport('nobody', ['admin'])).toBe(false)
      expect(seen).toContain('/v1/entitlements/acme Bearer sk_docs')
      await entitlements.close() // waits for the last-known-good token to reach the disk
      expect(readdirSync(process.env.ENTITLE_STATE_DIR)).toContain('entitle%3Atoken%3Aacme.json')
    } finally {
      await entitlements.close()
      licenseServer.close()
    }
  },
  'examples/docs/metering.ts': async () => {
    // A loopback license server with a usage endpoint that counts each line id once, as protocol v1 asks.
    const issuer = await createTestIssuer({ issuer: 'https://license.example.com', audience: 'my-app' })
    const counted = new Map<string, number>()
    const lineIds = new Set<string>()
    const resetsAt = Math.floor(Date.now() / 1000) + 86_400
    const licenseServer = await loopbackLicenseServer(issuer, async (req, res) => {
      if (req.url === '/v1/usage' && req.method === 'POST') {
        let text = ''
        for await (const chunk of req) text += chunk
        const { lines } = JSON.parse(text) as {
          lines: Array<{ id: string; subject: string; metric: string; amount: number }>
        }
        for (const line of lines) {
          if (lineIds.has(line.id)) continue
          lineIds.add(line.id)
          const key = `${line.subject}/${line.metric}`
          counted.set(key, (counted.get(key) ?? 0) + line.amount)
        }
        return res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ accepted: lines.length, at: Date.now() }))
      }
      const subject = /^\/v1\/entitlements\/(.+)$/.exec(req.url ?? '')?.[1]
      if (subject !== 'acme') return res.writeHead(404).end()
      const cap = { limit: 3, period: 'month' as const, used: 1, resetsAt }
      const token = await issuer.issue(
        { plan: { id: 'team' }, features: { 'api-calls': { cap } } },
        { subject },
      )
      res.writeHead(200, { 'content-type': 'application/entitlement+jwt' }).end(token)
    })
    process.env.LICENSE_API_KEY = 'sk_docs'
    process.env.ENTITLE_STATE_DIR = mkdtempSync(join(tmpdir(), 'entitle-docs-metering-'))
    const { search, flushOnShutdown, entitlements } = await import('../../examples/docs/metering.js')
    try {
      expect(await search('acme')).toBe('ok, 1 left')
      expect(await search('acme')).toBe('ok, 0 left')
      expect(await search('acme')).toMatch(/^over the cap of 3 until /)
      flushOnShutdown('SIGUSR2')
      process.kill(process.pid, 'SIGUSR2')
      await expect.poll(() => counted.get('acme/api-calls'), { timeout: 5000 }).toBe(2)
      expect(entitlements.stats().usage).toMatchObject({ recorded: 2, sent: 1, pending: 0 })
    } finally {
      await entitlements.close()
      licenseServer.close()
    }
  },
  'examples/docs/fleet.ts': async () => {
    const { startRedis } = await import('../fleet/redis-server.js')
    const redis = await startRedis()
    const issuer = await createTestIssuer({ issuer: 'https://license.example.com', audience: 'my-app' })
    const reported: number[] = []
    const resetsAt = Math.floor(Date.now() / 1000) + 86_400
    const licenseServer = await loopbackLicenseServer(issuer, async (req, res) => {
      if (req.url === '/v1/usage') {
        let text = ''
        for await (const chunk of req) text += chunk
        for (const line of JSON.parse(text).lines) reported.push(line.amount)
        return res.writeHead(200, { 'content-type': 'application/json' }).end(`{"at":${Date.now()}}`)
      }
      const cap = { limit: 3, period: 'month' as const, used: 0, resetsAt }
      const token = await issuer.issue(
        { plan: { id: 'team' }, features: { 'api-calls': { cap } } },
        { subject: 'acme' },
      )
      res.writeHead(200, { 'content-type': 'application/entitlement+jwt' }).end(token)
    })
    process.env.REDIS_URL = redis.url
    const fleet = await import('../../examples/docs/fleet.js')
    try {
      await expect.poll(() => fleet.redis.status).toBe('ready')
      const answers = []
      for (let i = 0; i < 5; i++) answers.push(await fleet.callApi('acme'))
      expect(answers).toEqual([true, true, true, false, false])
      await fleet.shutdown()
      expect(reported.reduce((sum, n) => sum + n, 0)).toBe(3)
    } finally {
      licenseServer.close()
      await redis.stop()
    }
  },
  'examples/docs/express.ts': async () => {
    const issuer = await createTestIssuer({ issuer: 'https://license.example.com', audience: 'my-app' })
    const resetsAt = Math.floor(Date.now() / 1000) + 86_400
    const licenseServer = await loopbackLicenseServer(issuer, async (req, res) => {
      if (req.url === '/v1/usage') return res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
      const cap = { limit: 1, period: 'month' as const, used: 0, resetsAt }
      const ent = { plan: { id: 'free' }, features: { 'api-calls': { cap } }, upgrade: { plan: 'pro' } }
      res.writeHead(200).end(await issuer.issue(ent, { subject: 'acme' }))
    })
    const { app, entitlements } = await import('../../examples/docs/express.js')
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const call = (path: string) => fetch(`${base}${path}`, { headers: { 'x-customer-id': 'acme' } })
    try {
      const exported = await call('/reports/export')
      expect(exported.status).toBe(403)
      expect(await exported.json()).toMatchObject({ detail: 'not_in_plan', upgrade: { plan: 'pro' } })
      expect(await (await call('/api/search')).json()).toEqual({ results: [], remaining: 0 })
      const spent = await call('/api/search')
      expect(spent.status).toBe(429)
      expect(spent.headers.get('retry-after')).toMatch(/^\d+$/)
    } finally {
      server.closeAllConnections()
      server.close()
      await entitlements.close()
      licenseServer.close()
    }
  },
  'examples/browser/app.ts': async () => {
    const { driveBrowserExample } = await import('../browser/drive.js')
    const result = await driveBrowserExample()
    expect(result.shown.sso).toBe('denied: not_in_plan')
    expect(result.usageAfterLeaving).toBe(3)
  },
  'examples/docs/openfeature.ts': async () => {
    const issuer = await createTestIssuer({ issuer: 'https://license.example.com', audience: 'my-app' })
    const licenseServer = await loopbackLicenseServer(issuer, async (_req, res) => {
      const ent = {
        plan: { id: 'team' },
        features: { export: true as const, seats: { limit: 5 } },
        upgrades: { sso: { plan: 'pro' } },
      }
      res.writeHead(200).end(await issuer.issue(ent, { subject: 'acme' }))
    })
    const { planSummary, entitlements } = await import('../../examples/docs/openfeature.js')
    try {
      expect(await planSummary('acme', ['admin'])).toMatchObject({
        export: true,
        seatsLeft: 5,
        sso: { value: false, variant: 'not_in_plan', flagMetadata: { upgradePlan: 'pro' } },
      })
    } finally {
      await entitlements.close()
      licenseServer.close()
    }
  },
  'examples/docs/client-offline.ts': async () => {
    const issuer = await createTestIssuer({
      issuer: 'https://license.example.com',
      audience: 'my-desktop-app',
    })
    const dir = mkdtempSync(join(tmpdir(), 'entitle-docs-offline-'))
    writeFileSync(
      join(dir, 'license.jwt'),
      await issuer.issue({ plan: { id: 'desktop' }, features: { export: true } }),
    )
    const { exportSPKI, importJWK } = await import('jose')
    process.env.LICENSE_FILE = join(dir, 'license.jwt')
    process.env.LICENSE_PUBLIC_KEY = await exportSPKI(
      (await importJWK(issuer.publicJwk, 'EdDSA')) as CryptoKey,
    )
    process.env.ENTITLE_STATE_DIR = join(dir, 'state')
    const { exportAllowed, license } = await import('../../examples/docs/client-offline.js')
    try {
      expect(await exportAllowed()).toBe('export enabled')
    } finally {
      await license.close()
    }
  },
  'examples/readme/testing.ts': async () => {
    const { decision } = await import('../../examples/readme/testing.js')
    expect(decision).toMatchObject({ allowed: false, reason: 'limit_exceeded', remaining: 0 })
  },
  'examples/docs/handle-errors.ts': async () => {
    const { load } = await import('../../examples/docs/handle-errors.js')
    await expect(load()).resolves.toBeUndefined()
  },
  'examples/docs/getting-started.ts': async () => {
    const { seats } = await import('../../examples/docs/getting-started.js')
    expect(seats).toMatchObject({ allowed: true, limit: 10, used: 9, remaining: 1 })
  },
}

describe('docs code blocks', () => {
  it.each(code.map((b) => [`${b.page}: ${b.code.split('\n')[0]}`, b] as const))(
    '%s is mirrored in a runnable example',
    (_name, block) => {
      expect(block.example, 'add <!-- example: PATH --> above the block').toBeDefined()
      const source = readFileSync(block.example!, 'utf8')
      expect(source).toContain(block.code)
      expect(Object.keys(RUNS)).toContain(block.example)
    },
  )

  it.each(Object.entries(RUNS))('%s runs and does what the docs say', async (_path, run) => {
    await run()
  })
})

/** Runs the shell blocks of a page in order in a fresh folder, with `npx entitle` bound to the built CLI. */
function runShell(page: string) {
  const dir = mkdtempSync(join(tmpdir(), 'entitle-docs-'))
  const cli = join(process.cwd(), 'dist/cli.js')
  const prelude = `npx() { if [ "$1" = entitle ]; then shift; node '${cli}' "$@"; else echo "unexpected npx $*" >&2; return 99; fi; }`
  const commands = blocks(page)
    .filter((b) => b.lang === 'sh')
    .flatMap((b) => b.code.replace(/\\\n\s*/g, '').split('\n'))
    .filter((line) => line.trim() !== '' && !line.startsWith('npm '))
  const results = commands.map((command) => {
    const result = spawnSync('bash', ['-c', `${prelude}\n${command}`], { cwd: dir, encoding: 'utf8' })
    return { command, status: result.status, stderr: result.stderr, stdout: result.stdout }
  })
  return { dir, results }
}

describe('docs shell sessions', () => {
  it.each(['docs/cli.md', 'docs/getting-started.md'])('every command in %s succeeds, in order', (page) => {
    const { results } = runShell(page)
    expect(results.length).toBeGreaterThan(1)
    for (const result of results)
      expect({ command: result.command, status: result.status, stderr: result.stderr }).toEqual({
        command: result.command,
        status: 0,
        stderr: '',
      })
    if (page === 'docs/cli.md') {
      const inspect = results.find((r) => r.command.includes('inspect'))!
      expect(inspect.stdout).toContain('Verification: OK')
      expect(inspect.stdout).toMatch(/seats +ALLOWED/)
    }
  })
})

describe('docs/server.md', () => {
  it('the curl + openssl order places an order with the reference server, as the page says', async () => {
    const { startLicenseServer } = await import('../../examples/license-server/src/start.js')
    const text = readFileSync('docs/server.md', 'utf8')
    const block = /<!-- run: against the reference server -->\n```sh\n([\s\S]*?)\n```/.exec(text)?.[1]
    expect(block).toBeDefined()
    const dir = mkdtempSync(join(tmpdir(), 'entitle-server-docs-'))
    const running = await startLicenseServer({ dataDir: join(dir, '.license-server'), port: 0 })
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, LICENSE_SERVER: running.url }
      for (const name of ['ENTITLE_ADMIN_KEY', 'ENTITLE_ORDER_SECRET', 'ENTITLE_SERVICE_KEY'])
        delete env[name]
      // Asynchronous: the server answers from this very process.
      const result = await new Promise<{ status: number | null; stdout: string; stderr: string }>(
        (resolve) => {
          execFile(
            'bash',
            ['-e', '-c', block!],
            { cwd: dir, encoding: 'utf8', env },
            (error, stdout, stderr) =>
              resolve({ status: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
          )
        },
      )
      expect({ status: result.status, stderr: result.stderr }).toEqual({ status: 0, stderr: '' })
      expect(JSON.parse(result.stdout)).toMatchObject({
        orderId: 'crm-1',
        license: { customerId: 'acme', sku: 'team', seats: 3 },
        credentials: { apiKey: expect.stringMatching(/^ck_/) },
      })
    } finally {
      await running.close()
    }
  })
})
