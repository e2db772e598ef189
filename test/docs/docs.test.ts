import { execFile, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { startLicenseServer } from '../../examples/license-server/src/start.js'
import { LIVE_CLOCK, startTestServer, type TestServer } from '../server/helpers.js'
import { printedRuns, runAsPrinted } from './as-printed.js'

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

/** The reference license server the docs' snippets talk to, with the customers they name. */
let reference: TestServer | undefined
const customers: Record<string, { apiKey: string; licenseKey: string }> = {}

async function referenceServer() {
  if (reference !== undefined) return reference
  reference = await startTestServer(LIVE_CLOCK, 3600)
  process.env.LICENSE_SERVER = reference.url
  process.env.ENTITLE_SERVICE_KEY = reference.serviceKey
  for (const [id, sku] of [
    ['acme', 'starter'],
    ['hooli', 'starter'],
    ['globex', 'team'],
    ['initech', 'business'],
  ] as const)
    customers[id] = await reference.purchase(id, sku, { seats: 5 })
  return reference
}
afterAll(async () => {
  await reference?.close()
})

/** The customer's current token, from the reference server. */
async function tokenOf(customer: string): Promise<string> {
  const server = await referenceServer()
  const response = await fetch(`${server.url}/v1/entitlements/${customer}`, {
    headers: { authorization: `Bearer ${server.serviceKey}` },
  })
  return response.text()
}

/**
 * Runs an example as its page's "run it" paragraph says (see as-printed.ts): compiled as tsx would, in a folder of
 * the repository so `entitle` resolves to the build, and checks it printed the page's output and exited by itself.
 */
async function runPrintedHere(example: string) {
  const run = printedRuns().find((found) => found.example === example)
  expect(run, `${example}: a "run it" paragraph with an output block`).toBeDefined()
  const dir = join(process.cwd(), '.tmp', 'docs-run')
  mkdirSync(dir, { recursive: true })
  const script = join(dir, basename(example).replace(/\.ts$/, '.mjs'))
  const { transform } = await import('esbuild')
  const source = readFileSync(example, 'utf8')
  writeFileSync(script, (await transform(source, { loader: 'ts', format: 'esm', target: 'es2022' })).code)
  const result = await runAsPrinted(run!, script, dir)
  expect({ code: result.code, stderr: result.stderr, printed: result.printed }).toEqual({
    code: 0,
    stderr: '',
    printed: run!.output,
  })
  return { result, server: result.server, stateDir: result.stateDir }
}

/** Every example a docs block is, and how this test runs it against the reference license server. */
const RUNS: Record<string, () => Promise<void>> = {
  'examples/readme/guard-route.ts': async () => {
    await referenceServer()
    const { app } = await import('../../examples/readme/guard-route.js')
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/settings/sso`
    const call = (token?: string) => fetch(base, { headers: token ? { 'x-entitlement-token': token } : {} })
    try {
      const allowed = await call(await tokenOf('initech'))
      expect(allowed.status).toBe(200)
      expect(await allowed.json()).toEqual({ sso: 'configured', customer: 'initech', plan: 'business' })
      const team = await call(await tokenOf('globex'))
      expect(team.status).toBe(403)
      expect(team.headers.get('content-type')).toMatch(/^application\/problem\+json/)
      expect(await team.json()).toMatchObject({ detail: 'not_in_plan', upgrade: { plan: 'business' } })
      expect((await call()).status).toBe(401)
      for (const bad of ['garbage', `${await tokenOf('initech')}x`, 'a.b.c', 'x'.repeat(10_000)]) {
        const response = await call(bad)
        expect(response.status).toBe(403)
        expect((await response.json()).detail).toBe('token_invalid')
      }
    } finally {
      server.close()
    }
  },
  'examples/docs/client.ts': async () => {
    const printed = await runPrintedHere('examples/docs/client.ts')
    await printed.server.close()
    // The last-known-good token reached the disk before the script exited by itself.
    expect(readdirSync(printed.stateDir)).toContain('entitle%3Atoken%3Aglobex.json')
    await referenceServer()
    process.env.ENTITLE_STATE_DIR = mkdtempSync(join(tmpdir(), 'entitle-docs-state-'))
    const { canViewAuditLog, entitlements } = await import('../../examples/docs/client.js')
    try {
      expect(await canViewAuditLog('globex', ['admin'])).toBe(true)
      expect(await canViewAuditLog('globex', ['viewer'])).toBe(false)
      expect(await canViewAuditLog('acme', ['admin'])).toBe(false)
      expect(await canViewAuditLog('nobody', ['admin'])).toBe(false)
      await entitlements.close() // waits for the last-known-good token to reach the disk
      expect(readdirSync(process.env.ENTITLE_STATE_DIR)).toContain('entitle%3Atoken%3Aglobex.json')
    } finally {
      await entitlements.close()
    }
  },
  // Run as the page says: the script's tail closes its client (SIGTERM) and so cannot be imported here.
  'examples/docs/metering.ts': async () => {
    const { result, server } = await runPrintedHere('examples/docs/metering.ts')
    try {
      const usage = await fetch(`${server.url}/admin/customers/acme/usage`, {
        headers: { authorization: `Bearer ${server.adminKey}` },
      })
      expect(((await usage.json()) as { usage: Array<{ total: number }> }).usage[0]?.total).toBe(2)
      expect(result.ms).toBeLessThan(10_000)
    } finally {
      await server.close()
    }
  },
  'examples/docs/soft-limits.ts': async () => {
    const { server } = await runPrintedHere('examples/docs/soft-limits.ts')
    await server.close()
  },
  'examples/docs/per-resource.ts': async () => {
    const { server } = await runPrintedHere('examples/docs/per-resource.ts')
    await server.close()
  },
  'examples/docs/credits.ts': async () => {
    const { server } = await runPrintedHere('examples/docs/credits.ts')
    // What the app spent reached the ledger: 5.2 for the call, 198 completions at 5.
    const ledger = await server.admin('GET', '/customers/hooli/credits')
    const balances = ((await ledger.json()) as { balances: Record<string, { spent: number }> }).balances
    expect(balances['ai-credits']?.spent).toBe(995.2)
    await server.close()
  },
  'examples/docs/floating-licenses.ts': async () => {
    const { server } = await runPrintedHere('examples/docs/floating-licenses.ts')
    // Both seats given back: the release, then the second client's close().
    const leases = await server.admin('GET', '/customers/initech/leases')
    expect(await leases.json()).toEqual({ leases: [] })
    await server.close()
  },
  'examples/docs/worker.ts': async () => {
    const server = await referenceServer()
    const values = new Map<string, string>()
    const kv = {
      get: async (key: string) => values.get(key) ?? null,
      put: async (key: string, value: string) => {
        values.set(key, value)
      },
      delete: async (key: string) => {
        values.delete(key)
      },
    }
    const env = { LICENSE_SERVER: server.url, ENTITLE_SERVICE_KEY: server.serviceKey, LICENSES: kv }
    const pending: Promise<unknown>[] = []
    const ctx = { waitUntil: (promise: Promise<unknown>) => pending.push(promise) }
    const { default: worker } = await import('../../examples/docs/worker.js')
    const allowed = await worker.fetch(new Request('https://api.example/?customer=acme'), env, ctx)
    expect([allowed.status, await allowed.json()]).toEqual([200, { allowed: true, reason: 'granted' }])
    // globex is on Team, which has export too; an unknown customer has no license.
    const unknown = await worker.fetch(new Request('https://api.example/?customer=nobody'), env, ctx)
    expect([unknown.status, (await unknown.json()).reason]).toEqual([403, 'not_in_plan'])
    expect((await worker.fetch(new Request('https://api.example/'), env, ctx)).status).toBe(400)
    // The last good token reaches KV for the next isolate. (Not every handed-over promise settles soon: the event
    // stream's is held for 25 s, as in a Worker.)
    const end = Date.now() + 5000
    while (![...values.keys()].some((key) => key.startsWith('entitle:')) && Date.now() < end)
      await new Promise((resolve) => setTimeout(resolve, 20))
    expect([...values.keys()].some((key) => key.startsWith('entitle:'))).toBe(true)
    expect(pending.length).toBeGreaterThan(0)
  },
  'examples/docs/next-middleware.ts': async () => {
    // In Node here, against the reference server; test/package/runtimes.test.ts runs it in edge-runtime too.
    await referenceServer()
    const pending: Promise<unknown>[] = []
    const event = { waitUntil: (promise: Promise<unknown>) => void pending.push(promise) }
    const { middleware, config } = await import('../../examples/docs/next-middleware.js')
    expect(config.matcher).toEqual(['/:customer/(export|sso|audit)/:path*'])
    // acme is on Starter: export passes through; SSO is Business's, offered as the upgrade.
    expect(await middleware(new Request('https://app.example/acme/export/q3.csv'), event)).toBeUndefined()
    const sso = await middleware(new Request('https://app.example/acme/sso/setup'), event)
    expect(sso!.status).toBe(403)
    expect(await sso!.json()).toMatchObject({
      feature: 'sso',
      reason: 'not_in_plan',
      upgrade: { plan: 'business' },
    })
    // initech bought Business.
    expect(await middleware(new Request('https://app.example/initech/sso/setup'), event)).toBeUndefined()
    expect(await middleware(new Request('https://app.example/acme/pricing'), event)).toBeUndefined()
    expect(pending.length).toBeGreaterThan(0)
  },
  'examples/docs/fleet.ts': async () => {
    const { server } = await runPrintedHere('examples/docs/fleet.ts')
    await server.close()
  },
  'examples/docs/express.ts': async () => {
    await referenceServer()
    const printed = await runPrintedHere('examples/docs/express.ts')
    await printed.server.close()
    process.env.ACME_API_KEY = 'acme-docs-key'
    process.env.PORT = '0'
    const { server, entitlements } = await import('../../examples/docs/express.js')
    if (!server.listening) await new Promise((resolve) => server.once('listening', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const call = (path: string, key = 'acme-docs-key') =>
      fetch(`${base}${path}`, { headers: { authorization: `Bearer ${key}` } })
    try {
      const sso = await call('/settings/sso')
      expect(sso.status).toBe(403)
      expect(await sso.json()).toMatchObject({ detail: 'not_in_plan', upgrade: { plan: 'business' } })
      // No key, or one the app did not give out: nobody, whatever headers the caller adds.
      expect((await call('/api/search', 'forged')).status).toBe(401)
      const spoofed = await fetch(`${base}/api/search`, { headers: { 'x-customer-id': 'initech' } })
      expect(spoofed.status).toBe(401)
      // acme's Starter cap is 5 calls a month: the sixth is 429 with Retry-After.
      const statuses = []
      for (let i = 0; i < 6; i++) statuses.push((await call('/api/search')).status)
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429])
      const spent = await call('/api/search')
      expect(spent.status).toBe(429)
      expect(spent.headers.get('retry-after')).toMatch(/^\d+$/)
    } finally {
      server.closeAllConnections()
      server.close()
      await entitlements.close()
    }
  },
  'examples/browser/app.ts': async () => {
    const { driveBrowserExample } = await import('../browser/drive.js')
    const result = await driveBrowserExample()
    expect(result.shown.sso).toBe('denied: not_in_plan')
    expect(result.usageAfterLeaving).toBe(3)
  },
  'examples/docs/openfeature.ts': async () => {
    const printed = await runPrintedHere('examples/docs/openfeature.ts')
    await printed.server.close()
    await referenceServer()
    const { planSummary, entitlements } = await import('../../examples/docs/openfeature.js')
    try {
      expect(await planSummary('globex', ['admin'])).toMatchObject({
        export: true,
        seatsLeft: 5,
        sso: { value: false, variant: 'not_in_plan', flagMetadata: { upgradePlan: 'business' } },
      })
    } finally {
      await entitlements.close()
    }
  },
  'examples/docs/client-offline.ts': async () => {
    const server = await referenceServer()
    const dir = mkdtempSync(join(tmpdir(), 'entitle-docs-offline-'))
    const offline = await fetch(`${server.url}/v1/offline-licenses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ licenseKey: customers.globex!.licenseKey, fingerprint: 'docs-laptop-01' }),
    })
    writeFileSync(join(dir, 'license.jwt'), ((await offline.json()) as { token: string }).token)
    writeFileSync(join(dir, 'jwks.json'), await (await fetch(`${server.url}/.well-known/jwks.json`)).text())
    process.env.LICENSE_FILE = join(dir, 'license.jwt')
    process.env.LICENSE_KEYS = join(dir, 'jwks.json')
    process.env.LICENSE_ISSUER = server.url
    process.env.DEVICE_ID = 'docs-laptop-01'
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
  // Steps 2 and 3 of the page (the shell blocks) make the keys and the token in a folder; step 4 runs there.
  'examples/docs/getting-started.ts': async () => {
    const { dir, results } = runShell('docs/getting-started.md')
    expect(results.every((result) => result.status === 0)).toBe(true)
    const { transform } = await import('esbuild')
    const source = readFileSync('examples/docs/getting-started.ts', 'utf8').replace(
      "from 'entitle'",
      `from ${JSON.stringify(join(process.cwd(), 'dist/index.js'))}`,
    )
    writeFileSync(join(dir, 'check.mjs'), (await transform(source, { loader: 'ts', format: 'esm' })).code)
    const ran = spawnSync(process.execPath, ['check.mjs'], { cwd: dir, encoding: 'utf8' })
    expect({ status: ran.status, stderr: ran.stderr, stdout: ran.stdout }).toEqual({
      status: 0,
      stderr: '',
      stdout: 'globex may invite one more: 9 of 10 seats in use\n',
    })
  },
}

describe('docs code blocks', () => {
  it.each(code.map((b) => [`${b.page}: ${b.code.split('\n')[0]}`, b] as const))(
    '%s is mirrored in a runnable example',
    (_name, block) => {
      expect(block.example, 'add <!-- example: PATH --> above the block').toBeDefined()
      // The block is the whole file: what a reader pastes runs, imports and all.
      expect(`${block.code}\n`).toBe(readFileSync(block.example!, 'utf8'))
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
    if (page === 'docs/getting-started.md') {
      const inspect = results.find((r) => r.command.includes('inspect'))!
      expect(inspect.stdout).toContain('Verification: OK')
      expect(inspect.stdout).not.toContain('Problems')
    }
    if (page === 'docs/cli.md') {
      const inspect = results.find((r) => r.command.includes('inspect'))!
      expect(inspect.stdout).toContain('Verification: OK')
      expect(inspect.stdout).toMatch(/seats +ALLOWED/)
    }
  })
})

describe('docs/server.md', () => {
  it('the curl + openssl order places an order with the reference server, as the page says', async () => {
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
