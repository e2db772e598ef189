import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LIVE_CLOCK, SERVICE, startTestServer, type TestServer } from '../server/helpers.js'

// The same probe (test/fixtures/runtimes/probe.js: a client at module scope; verify + decide; check, snapshot, a
// renewal and a pushed upgrade across requests; usage flushed through waitUntil) in each edge runtime, installed
// from npm at the version the lockfile pins: workerd (Cloudflare Workers' runtime, bundled as wrangler bundles),
// edge-runtime (Vercel's, bundled with Next.js's edge-light condition), Deno and Bun (each importing the package by
// name from node_modules). The package comes from `npm pack`, installed in a new project, as a user gets it.

const FIXTURES = join(process.cwd(), 'test', 'fixtures', 'runtimes')
const bin = (name: string) => join(process.cwd(), 'node_modules', '.bin', name)
/** Short tokens, so a renewal falls due within the test: renewed from about 5 s on. */
const TOKEN_TTL_SEC = 8

let app: string

beforeAll(() => {
  app = mkdtempSync(join(tmpdir(), 'entitle-runtimes-'))
  const [packed] = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', app], {
      encoding: 'utf8',
    }),
  ) as Array<{ filename: string }>
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'probe', private: true, type: 'module' }))
  execFileSync(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', join(app, packed!.filename)],
    { cwd: app, stdio: 'ignore', timeout: 120_000 },
  )
  for (const file of ['probe.js', 'edge-light.js', 'deno-host.js', 'bun-host.js'])
    copyFileSync(join(FIXTURES, file), join(app, file))
  copyFileSync(join(process.cwd(), 'examples', 'docs', 'next-middleware.ts'), join(app, 'next-middleware.ts'))
  // As Next.js runs middleware: a fetch event; a request it lets through answers 200 here.
  writeFileSync(
    join(app, 'middleware-entry.js'),
    `import { middleware } from './next-middleware.ts'
addEventListener('fetch', (event) => {
  event.respondWith(middleware(event.request, event).then((response) => response ?? new Response('next')))
})
`,
  )
})

/** A free loopback port (workerd takes its socket from its config). */
async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  return port
}

/** Bundles a probe entry as the runtime's bundler does: its export conditions, the config set before the module. */
async function bundle(
  entry: string,
  conditions: string[],
  config: object,
  out: string,
  define: Record<string, string> = {},
): Promise<string> {
  const { build } = await import('esbuild')
  await build({
    define,
    entryPoints: [join(app, entry)],
    absWorkingDir: app,
    bundle: true,
    format: 'esm',
    platform: 'neutral',
    mainFields: ['module', 'main'],
    conditions,
    banner: { js: `globalThis.PROBE_CONFIG = ${JSON.stringify(config)};` },
    outfile: join(app, out),
    logLevel: 'silent',
  })
  return readFileSync(join(app, out), 'utf8')
}

/** Starts a runtime and waits until it listens; its output is kept for the failure message. */
async function started(
  command: string,
  args: string[],
  env: Record<string, string>,
  port?: number,
): Promise<{ url: string; child: ChildProcess; output: () => string }> {
  const child = spawn(command, args, { cwd: app, env: { ...process.env, ...env }, stdio: 'pipe' })
  let output = ''
  child.stdout!.on('data', (chunk) => {
    output += chunk
  })
  child.stderr!.on('data', (chunk) => {
    output += chunk
  })
  const end = Date.now() + 30_000
  for (;;) {
    const listening =
      /listening (\d+)/.exec(output)?.[1] ?? (port && /Listening/i.test(output) ? port : undefined)
    if (listening !== undefined) return { url: `http://127.0.0.1:${listening}`, child, output: () => output }
    if (child.exitCode !== null || Date.now() > end)
      throw new Error(`${command} did not start (exit ${child.exitCode}):\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const RUNTIMES: Record<string, (config: object) => ReturnType<typeof started>> = {
  async workerd(config) {
    // As wrangler bundles a Worker: the workerd and worker conditions, then browser.
    await bundle('probe.js', ['workerd', 'worker', 'browser'], config, 'worker.js')
    const port = await freePort()
    writeFileSync(
      join(app, 'workerd.capnp'),
      `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .probe),
    (name = "internet", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [ (name = "http", address = "127.0.0.1:${port}", http = (), service = "main") ],
);
const probe :Workerd.Worker = (
  modules = [ (name = "worker.js", esModule = embed "worker.js") ],
  compatibilityDate = "2026-11-01",
);
`,
    )
    return started(bin('workerd'), ['serve', 'workerd.capnp', '--verbose'], {}, port)
  },
  async 'edge-runtime'(config) {
    // As Next.js bundles middleware and edge functions: edge-light, worker, browser.
    await bundle('edge-light.js', ['edge-light', 'worker', 'browser'], config, 'edge.js')
    // The host is a Node script of this repository's (it imports edge-runtime from its devDependencies).
    return started(process.execPath, [join(FIXTURES, 'edge-host.mjs'), join(app, 'edge.js')], {})
  },
  deno: (config) =>
    started(bin('deno'), ['run', '--allow-net', '--allow-env', '--allow-read', 'deno-host.js'], {
      PROBE_CONFIG: JSON.stringify(config),
      DENO_NO_UPDATE_CHECK: '1',
    }),
  bun: (config) => started(bin('bun'), ['bun-host.js'], { PROBE_CONFIG: JSON.stringify(config) }),
}

/** Where background work runs in each: a Worker's and an edge function's timers end with the request. */
const BACKGROUND: Record<string, 'timers' | 'requests'> = {
  workerd: 'requests',
  'edge-runtime': 'requests',
  deno: 'timers',
  bun: 'timers',
}

const until = async <T>(ask: () => Promise<T>, done: (value: T) => boolean, ms = 20_000): Promise<T> => {
  const end = Date.now() + ms
  for (;;) {
    const value = await ask()
    if (done(value)) return value
    if (Date.now() > end) throw new Error(`timed out; last: ${JSON.stringify(value)}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

describe.each(Object.keys(RUNTIMES))('the package in %s', (runtime) => {
  let server: TestServer
  let running: Awaited<ReturnType<typeof started>>

  beforeAll(async () => {
    server = await startTestServer(LIVE_CLOCK, TOKEN_TTL_SEC)
    await server.purchase('acme', 'starter')
    running = await RUNTIMES[runtime]!({
      server: server.url,
      serviceKey: SERVICE,
      background: BACKGROUND[runtime],
    })
  })
  afterAll(async () => {
    running?.child.kill('SIGKILL')
    await server?.close()
  })

  const get = async (path: string, init?: RequestInit) => {
    const response = await fetch(`${running.url}${path}`, init)
    const text = await response.text()
    try {
      return JSON.parse(text) as Record<string, unknown>
    } catch {
      throw new Error(`${path}: ${response.status} ${text}\n${running.output()}`)
    }
  }

  it('verifies and decides, checks and snapshots, renews, hears an upgrade and sends usage, across requests', async () => {
    // Verify + decide alone, on a token from the server.
    const token = await server.tokenOf('acme')
    const verify = (feature: string) => get(`/verify?feature=${feature}`, { method: 'POST', body: token })
    expect(await verify('export')).toEqual({ allowed: true, reason: 'granted', plan: 'starter' })
    expect(await verify('sso')).toMatchObject({ allowed: false, reason: 'not_in_plan' })

    // The client made at module scope, first used here.
    const first = await get('/check?feature=export')
    expect(first).toMatchObject({ allowed: true, reason: 'granted', plan: 'starter' })
    expect(await get('/check?feature=sso')).toMatchObject({ allowed: false, reason: 'not_in_plan' })
    expect(await get('/snapshot')).toMatchObject({
      status: 'loaded',
      plan: 'starter',
      features: { export: true },
    })

    // A renewal, across requests: a later token than the first, never a stale answer.
    const renewed = await until(
      () => get('/check?feature=export'),
      (answer) => (answer.issuedAt as number) > (first.issuedAt as number),
    )
    expect(renewed).toMatchObject({ allowed: true })
    expect(renewed.source).not.toBe('stale')

    // A pushed upgrade: the order on the server, heard by the running probe.
    const upgrade = { orderId: `up-${runtime}`, type: 'upgrade', customer: { id: 'acme' }, sku: 'business' }
    expect((await server.order(upgrade)).status).toBe(200)
    expect(
      await until(
        () => get('/check?feature=sso'),
        (answer) => answer.allowed === true,
      ),
    ).toMatchObject({ allowed: true, plan: 'business' })

    // Usage recorded in a request and flushed through its waitUntil reaches the server.
    expect(await get('/record?feature=api-calls&amount=3')).toEqual({ recorded: true })
    await until(
      async () => (await (await server.admin('GET', '/customers/acme/usage')).json()) as { usage: unknown[] },
      (body) => (body.usage as Array<{ total: number }>).some((line) => line.total === 3),
    )
    // Nothing went wrong out of sight: the runtime printed no uncaught error.
    expect(running.output()).not.toMatch(/Uncaught|Disallowed operation|unhandled/i)
  }, 90_000)
})

describe('the Next.js middleware of docs/edge.md in edge-runtime', () => {
  it('lets a bought feature through and answers 403 with the upgrade for one not bought', async () => {
    const server = await startTestServer(LIVE_CLOCK, 3600)
    await server.purchase('acme', 'starter')
    // Next.js inlines process.env at build time; the bundle does the same.
    await bundle('middleware-entry.js', ['edge-light', 'worker', 'browser'], {}, 'middleware.js', {
      'process.env.LICENSE_SERVER': JSON.stringify(server.url),
      'process.env.ENTITLE_SERVICE_KEY': JSON.stringify(SERVICE),
    })
    const running = await started(
      process.execPath,
      [join(FIXTURES, 'edge-host.mjs'), join(app, 'middleware.js')],
      {},
    )
    try {
      const through = await fetch(`${running.url}/acme/export/q3.csv`)
      expect([through.status, await through.text()]).toEqual([200, 'next'])
      const denied = await fetch(`${running.url}/acme/sso/setup`)
      expect(denied.status).toBe(403)
      expect(await denied.json()).toMatchObject({
        feature: 'sso',
        reason: 'not_in_plan',
        upgrade: { plan: 'business' },
      })
    } finally {
      running.child.kill('SIGKILL')
      await server.close()
    }
  })
})
