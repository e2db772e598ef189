import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, startRedis } from '../fleet/redis-server.js'
import { LIVE_CLOCK, startTestServer, type TestServer } from '../server/helpers.js'
import { printedRuns, runAsPrinted } from './as-printed.js'

// Every TypeScript snippet in README.md and docs/, as a reader pastes it: a file of its own in a new ESM project
// ("type": "module") that installs the packed package from its tarball, compiled there with tsc (strict,
// nodenext) and run with node, the server snippets against the reference license server.

const PAGES = [
  'README.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

/** Every `ts` block of the docs with the example it is, by file name. */
function snippets(): Map<string, string> {
  const found = new Map<string, string>()
  for (const page of PAGES) {
    const text = readFileSync(page, 'utf8')
    for (const match of text.matchAll(/<!-- example: (\S+) -->\n```ts\n([\s\S]*?)\n```/g))
      found.set(basename(match[1]!), `${match[2]}\n`)
  }
  return found
}

const run = (command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(command, args, { ...options, encoding: 'utf8', timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: unknown }).code ?? 1) || 1 : 0, stdout, stderr }),
    )
  })

let app: string
let compiled: { code: number; stdout: string; stderr: string }
let server: TestServer
let redis: Awaited<ReturnType<typeof startRedis>>
let env: NodeJS.ProcessEnv
const licenseKeys: Record<string, string> = {}

beforeAll(async () => {
  app = mkdtempSync(join(tmpdir(), 'entitle-snippets-'))
  const packed = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', app], {
    cwd: process.cwd(),
  })
  const tarball = join(app, (JSON.parse(packed.stdout) as Array<{ filename: string }>)[0]!.filename)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pasted', private: true, type: 'module' }))
  writeFileSync(
    join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        module: 'nodenext',
        target: 'es2022',
        lib: ['es2022', 'dom'],
        strict: true,
        skipLibCheck: true,
        outDir: 'out',
        types: ['node'],
      },
      include: ['*.ts'],
    }),
  )
  // What a reader of each page installs beside it; all from the npm cache the repository's own install filled.
  const deps = [
    'express',
    'ioredis',
    '@openfeature/server-sdk',
    '@openfeature/core',
    '@types/node',
    '@types/express',
  ]
  const installed = await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, ...deps],
    {
      cwd: app,
    },
  )
  expect(installed.stderr).not.toMatch(/ERR!/)
  for (const [file, code] of snippets()) writeFileSync(join(app, file), code)
  // Compiled once, here, so that every test below runs alone and in any order; the first test checks the result.
  compiled = await run(
    process.execPath,
    [join(process.cwd(), 'node_modules/typescript/bin/tsc'), '-p', '.'],
    {
      cwd: app,
    },
  )

  server = await startTestServer(LIVE_CLOCK, 3600)
  for (const [id, sku] of [
    ['acme', 'starter'],
    ['globex', 'team'],
  ] as const)
    licenseKeys[id] = (await server.purchase(id, sku)).licenseKey
  // One floating desktop seat, for the floating-licenses page.
  await server.purchase('initech', 'starter', { seats: 1, addons: ['floating-desktop'] })
  redis = await startRedis()
  env = {
    ...process.env,
    LICENSE_SERVER: server.url,
    ENTITLE_SERVICE_KEY: server.serviceKey,
    REDIS_URL: redis.url,
    ENTITLE_STATE_DIR: join(app, 'state'),
  }
}, 180_000)
afterAll(async () => {
  await server?.close()
  await redis?.stop()
})

/** Runs `code` as an ES module in the pasted project, next to the compiled snippets. */
async function drive(code: string, extraEnv: NodeJS.ProcessEnv = {}) {
  const result = await run(process.execPath, ['--input-type=module', '-e', code], {
    cwd: app,
    env: { ...env, ...extraEnv },
  })
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' })
  return result.stdout.trim()
}

/** Starts a compiled server snippet on a free port, asks it `path` once it listens, and stops it. */
async function askServing(
  file: string,
  path: string,
  headers: Record<string, string>,
  extraEnv: NodeJS.ProcessEnv = {},
) {
  const port = await freePort()
  const child = execFile(process.execPath, [join(app, 'out', file)], {
    cwd: app,
    env: { ...env, ...extraEnv, PORT: String(port) },
  })
  try {
    for (let i = 0; i < 100; i++) {
      const response = await fetch(`http://127.0.0.1:${port}${path}`, { headers }).catch(() => undefined)
      if (response !== undefined)
        return { status: response.status, headers: response.headers, body: await response.json() }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new Error(`${file} did not listen`)
  } finally {
    child.kill()
  }
}

describe('every snippet of the docs, pasted into a new ESM project that installs the package', () => {
  it('covers every TypeScript block, each a whole file', () => {
    expect([...snippets().keys()].sort()).toEqual([
      'app.ts',
      'client-offline.ts',
      'client.ts',
      'credits.ts',
      'express.ts',
      'fleet.ts',
      'floating-licenses.ts',
      'getting-started.ts',
      'guard-route.ts',
      'handle-errors.ts',
      'metering.ts',
      'next-middleware.ts',
      'openfeature.ts',
      'per-resource.ts',
      'soft-limits.ts',
      'testing.ts',
      'worker.ts',
    ])
  })

  it('compiles with tsc (strict, nodenext) against the installed package’s types', () => {
    expect(compiled.stdout + compiled.stderr).toBe('')
    expect(compiled.code).toBe(0)
  })

  it('the README’s testing snippet and the error-handling snippet run as they are', async () => {
    expect(await drive(`import './out/testing.js'`)).toBe('false limit_exceeded 0')
    expect(
      await drive(`const { load } = await import('./out/handle-errors.js'); console.log(await load())`),
    ).toBe('undefined')
  })

  it('getting started: the shell steps, then the snippet, in one folder', async () => {
    const folder = mkdtempSync(join(app, 'started-'))
    const cli = join(app, 'node_modules/.bin/entitle')
    for (const args of [
      ['keygen', '--out', 'keys'],
      [
        'issue',
        '--key',
        'keys/entitle-private.jwk.json',
        '--iss',
        'https://license.example.com',
        '--aud',
        'my-app',
        '--sub',
        'globex',
        '--plan',
        'team',
        '--feature',
        'export',
        '--limit',
        'seats=10',
        '--out',
        'globex.jwt',
      ],
    ])
      expect((await run(cli, args, { cwd: folder })).code).toBe(0)
    const result = await run(process.execPath, [join(app, 'out/getting-started.js')], { cwd: folder, env })
    expect(result).toMatchObject({
      code: 0,
      stderr: '',
      stdout: 'globex may invite one more: 9 of 10 seats in use\n',
    })
  })

  it.each(printedRuns().map((run) => [run.example, run] as const))(
    '%s, run as its page says, prints what the page shows and exits by itself',
    async (_example, run) => {
      const script = join(app, 'out', basename(run.example).replace(/\.ts$/, '.js'))
      const result = await runAsPrinted(run, script, app)
      await result.server.close()
      expect({ code: result.code, stderr: result.stderr, printed: result.printed }).toEqual({
        code: 0,
        stderr: '',
        printed: run.output,
      })
    },
  )

  it('the Express snippets serve on a port and answer as the docs say', async () => {
    for (const [file, path, headers, status] of [
      ['express.js', '/api/search', { authorization: 'Bearer acme-api-key' }, 200],
      ['express.js', '/api/search', { 'x-customer-id': 'acme' }, 401],
      ['guard-route.js', '/settings/sso', {}, 401],
    ] as const)
      expect({ file, path, status: (await askServing(file, path, headers)).status }).toEqual({
        file,
        path,
        status,
      })
  })

  it('the README’s guard: 403 with the reason, and 503 with Retry-After when the keys cannot be fetched', async () => {
    const token = await (
      await fetch(`${server.url}/v1/entitlements/globex`, {
        headers: { authorization: `Bearer ${server.serviceKey}` },
      })
    ).text()
    const answered = await askServing('guard-route.js', '/settings/sso', { 'x-entitlement-token': token })
    expect(answered).toMatchObject({
      status: 403,
      body: { detail: 'not_in_plan', upgrade: { plan: 'business' } },
    })
    const unreachable = await askServing(
      'guard-route.js',
      '/settings/sso',
      { 'x-entitlement-token': token },
      { LICENSE_SERVER: `http://127.0.0.1:${await freePort()}` },
    )
    expect(unreachable).toMatchObject({ status: 503, body: { detail: 'jwks_unavailable' } })
    expect(unreachable.headers.get('retry-after')).toBe('30')
  })

  it('the offline snippet reads an offline license and the server’s keys from files', async () => {
    const offline = await fetch(`${server.url}/v1/offline-licenses`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ licenseKey: licenseKeys.globex, fingerprint: 'pasted-laptop' }),
    })
    writeFileSync(join(app, 'license.jwt'), ((await offline.json()) as { token: string }).token)
    writeFileSync(join(app, 'jwks.json'), await (await fetch(`${server.url}/.well-known/jwks.json`)).text())
    const answer = await drive(
      `const { exportAllowed, license } = await import('./out/client-offline.js')
console.log(await exportAllowed())
await license.close()`,
      { LICENSE_ISSUER: server.url, DEVICE_ID: 'pasted-laptop' },
    )
    expect(answer).toBe('export enabled')
  })
})
