import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

// Runs code in a fresh Node process, resolving `entitle` through the package's own exports map (self-reference),
// exactly as an installed copy resolves.
const run = (code: string, type: 'module' | 'commonjs') =>
  execFileSync(process.execPath, [`--input-type=${type}`, '-e', code], { encoding: 'utf8' }).trim()

const scenario = (imports: string) => `${imports}
const issuer = await createTestIssuer()
const token = await issuer.issue({ plan: { id: 'pro' }, features: { export: true } })
const decision = await checkEntitlement(token, 'export', issuer.verifyOptions)
const denied = await checkEntitlement('garbage', 'export', issuer.verifyOptions)
console.log(JSON.stringify([decision.allowed, denied.reason, typeof EntitlementError]))`

describe('package exports', () => {
  it('imports every entry point from ESM', () => {
    const out = run(
      scenario(`import { checkEntitlement, EntitlementError } from 'entitle'
import { createTestIssuer } from 'entitle/testing'`),
      'module',
    )
    expect(JSON.parse(out)).toEqual([true, 'token_invalid', 'function'])
  })

  it('requires every entry point from CommonJS', () => {
    const out = run(
      `(async () => {
${scenario(`const { checkEntitlement, EntitlementError } = require('entitle')
const { createTestIssuer } = require('entitle/testing')`)}
})().catch((error) => { console.error(error); process.exit(1) })`,
      'commonjs',
    )
    expect(JSON.parse(out)).toEqual([true, 'token_invalid', 'function'])
  })

  it('loads the Node, Redis and browser adapters from ESM and CommonJS', () => {
    const esm = run(
      `import { createFileStorage, tokenFromFile } from 'entitle/node'
import { createLocalStorage, flushOnPageHide } from 'entitle/browser'
import { createRedisUsageStore } from 'entitle/redis'
console.log(JSON.stringify([typeof createFileStorage, typeof tokenFromFile, typeof createLocalStorage, typeof flushOnPageHide, typeof createRedisUsageStore]))`,
      'module',
    )
    const cjs = run(
      `const { createFileStorage } = require('entitle/node'); const { createLocalStorage } = require('entitle/browser')
const { createRedisUsageStore } = require('entitle/redis')
console.log(JSON.stringify([typeof createFileStorage, typeof createLocalStorage, typeof createRedisUsageStore]))`,
      'commonjs',
    )
    expect(JSON.parse(esm)).toEqual(['function', 'function', 'function', 'function', 'function'])
    expect(JSON.parse(cjs)).toEqual(['function', 'function', 'function'])
  })

  it('ships the docs/token-schema.json that the zod schema generates', () => {
    expect(() =>
      execFileSync(process.execPath, ['scripts/token-schema.mjs', '--check'], { stdio: 'pipe' }),
    ).not.toThrow()
  })
})

describe('the browser build of the root entry', () => {
  it('is what a browser bundler resolves; Node, ESM and CommonJS, get the Node build', async () => {
    const { build } = await import('esbuild')
    const bundled = await build({
      stdin: { contents: "export { createEntitlements } from 'entitle'", resolveDir: process.cwd() },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    })
    const inputs = Object.keys(bundled.metafile.inputs)
    expect(inputs).toContain('dist/index.browser.js')
    expect(inputs.some((input) => input.includes('lru-cache'))).toBe(false)
    expect(run(`console.log(import.meta.resolve('entitle'))`, 'module')).toMatch(/\/dist\/index\.js$/)
    expect(run(`console.log(require.resolve('entitle'))`, 'commonjs')).toMatch(/\/dist\/index\.cjs$/)
  })

  it.each([[['workerd', 'worker', 'browser']], [['worker']], [['edge-light']]])(
    'is what a bundler for an edge runtime resolves (conditions %j), with no Node built-in',
    async (conditions) => {
      const { build } = await import('esbuild')
      const bundled = await build({
        stdin: { contents: "export { createEntitlements } from 'entitle'", resolveDir: process.cwd() },
        bundle: true,
        // As wrangler and Next.js bundle for their edge runtimes: not for a browser, with the runtime's condition.
        platform: 'neutral',
        mainFields: ['module', 'main'],
        conditions,
        format: 'esm',
        write: false,
        metafile: true,
        logLevel: 'silent',
      })
      const inputs = Object.keys(bundled.metafile.inputs)
      expect(inputs).toContain('dist/index.browser.js')
      expect(inputs.filter((input) => input.startsWith('node:') || input.includes('lru-cache'))).toEqual([])
    },
  )

  it("fetches format version 2's chunk at the first token that needs it, and verifies v: 1 tokens without it", () => {
    // The built browser build, run as it is: the entry, the chunk it shares with format version 2's code, and that
    // code's chunk, imported by the verifier. A copy without that chunk stands for a page that cannot fetch it.
    const cache = join(process.cwd(), 'node_modules', '.cache')
    mkdirSync(cache, { recursive: true })
    const offline = mkdtempSync(join(cache, 'entitle-browser-build-'))
    try {
      cpSync(join(process.cwd(), 'dist'), offline, { recursive: true })
      const chunks = readdirSync(offline).filter((file) => /^version-2-.*\.js$/.test(file))
      expect(chunks).toHaveLength(1)
      rmSync(join(offline, chunks[0]!))
      const probe = (build: string) => `import { createTestIssuer } from 'entitle/testing'
const { createEntitlementVerifier, decide } = await import(${JSON.stringify(build)})
const issuer = await createTestIssuer()
const verifier = createEntitlementVerifier(issuer.verifyOptions)
const now = Date.now()
const v1 = await verifier.verify(await issuer.issue({ features: { seats: { limit: 3 } } }))
const out = [decide(v1, 'seats', { usage: 2 }, now).reason]
try {
  const v2 = await verifier.verify(await issuer.issue({
    features: { builds: { per: { kind: 'repository', limit: 2 } }, cad: { pool: 'desk' }, ai: true },
    pools: { desk: { seats: 1, holder: 'user', ttl: 60, heartbeat: 20 } },
    credits: { tokens: { grants: [{ id: 'g1', remaining: 10 }], asOf: now / 1000, spent: 0, costs: { ai: { amount: 4 } } } },
  }))
  out.push(
    decide(v2, 'builds', { usage: 2, resource: 'repository:r1' }, now).reason,
    decide(v2, 'cad', {}, now).reason,
    decide(v2, 'ai', { amount: 2 }, now).reason,
    decide(v2, 'ai', { amount: 3 }, now).reason,
  )
} catch (error) {
  out.push(error.code)
}
console.log(JSON.stringify(out))`
      expect(JSON.parse(run(probe(join(process.cwd(), 'dist', 'index.browser.js')), 'module'))).toEqual([
        'granted',
        'limit_exceeded',
        'lease_required',
        'granted',
        'credits_exhausted',
      ])
      // Without the chunk: the v: 1 token still verifies and decides; the v: 2 one is refused as unreachable code
      // (server_unavailable, which proves nothing of the token), not as a bad token.
      expect(JSON.parse(run(probe(join(offline, 'index.browser.js')), 'module'))).toEqual([
        'granted',
        'server_unavailable',
      ])
    } finally {
      rmSync(offline, { recursive: true, force: true })
    }
  })

  it('refuses a PEM key, naming the JWK, where the Node build verifies with it', async () => {
    const keys = `import { exportSPKI, importJWK } from 'jose'
import { createTestIssuer } from 'entitle/testing'
const issuer = await createTestIssuer()
const token = await issuer.issue({ plan: { id: 'pro' } })
const pem = await exportSPKI(await importJWK(issuer.publicJwk, 'EdDSA'))
const options = { ...issuer.verifyOptions, keys: pem }`
    const node = run(
      `${keys}
import { verifyEntitlementToken } from 'entitle'
console.log((await verifyEntitlementToken(token, options)).plan.id)`,
      'module',
    )
    expect(node).toBe('pro')
    const browser = run(
      `${keys}
const { createEntitlementVerifier } = await import(${JSON.stringify(`${process.cwd()}/dist/index.browser.js`)})
try { createEntitlementVerifier(options); console.log('accepted') } catch (error) { console.log(error.name + ': ' + error.message) }`,
      'module',
    )
    expect(browser).toMatch(/^TypeError: PEM keys are not read by the browser build: pass the public JWK/)
  })
})
