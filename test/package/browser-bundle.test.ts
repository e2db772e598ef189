import { builtinModules } from 'node:module'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build, type Plugin } from 'esbuild'
import { describe, expect, it } from 'vitest'
import { firstLoad } from '../../bench/first-load.mjs'

const NODE_BUILTINS = new Set(builtinModules.flatMap((name) => [name, `node:${name}`]))

/** Fails the build on any import of a Node built-in, naming who imported it. */
const noNodeBuiltins: Plugin = {
  name: 'no-node-builtins',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /.*/ }, (args) => {
      if (args.path.startsWith('node:') || NODE_BUILTINS.has(args.path)) {
        return { errors: [{ text: `Node built-in "${args.path}" imported by ${args.importer}` }] }
      }
      return undefined
    })
  },
}

/**
 * Bundles a file, or a module's source (resolved from the repository root, as an app resolves `entitle`); with
 * `splitting`, code imported on first use goes to chunks of its own, as an app's bundler splits it.
 */
async function bundleForBrowser(entry: string | { contents: string }, splitting = false) {
  return build({
    ...(splitting ? { splitting: true, outdir: join(process.cwd(), '.size-out') } : {}),
    ...(typeof entry === 'string'
      ? { entryPoints: [entry] }
      : { stdin: { contents: entry.contents, resolveDir: process.cwd() } }),
    // An app that uses React has it anyway: the React example is weighed without it.
    external: ['react', 'react/*', 'react-dom', 'react-dom/*'],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    minify: true,
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [noNodeBuiltins],
  })
}

describe('browser bundle', () => {
  it.each(['src/index.ts', 'dist/index.js', 'dist/testing.js', 'dist/browser.js'])(
    'bundles %s for the browser with no Node built-in',
    async (entry) => {
      const result = await bundleForBrowser(entry)
      expect(result.errors).toEqual([])
      const inputs = Object.keys(result.metafile.inputs)
      expect(inputs.filter((input) => input.startsWith('node:'))).toEqual([])
      expect(result.outputFiles[0]!.text).not.toMatch(/\brequire\(["']node:/)
    },
  )

  it('fails, as it should, on a module that imports a Node built-in', async () => {
    await expect(bundleForBrowser('test/fixtures/imports-node-crypto.ts')).rejects.toThrow(
      /Node built-in "node:crypto"/,
    )
  })

  it('keeps server code out of the browser example', async () => {
    const text = (await bundleForBrowser('examples/browser/app.ts')).outputFiles[0]!.text
    for (const name of [
      'node:',
      'better-sqlite3',
      'hono',
      'express',
      'ioredis',
      'license-server',
      'createFileStorage',
      'requireEntitlement',
      'createRedisUsageStore',
    ])
      expect({ name, found: text.includes(name) }).toEqual({ name, found: false })
  })

  // Metering is a plug-in: its code (the meter, its journal, the caps' reservations, consume, credit holds) is in a
  // bundle only when the app imports `metering`. Three of its strings stand for it: the reservations' storage key,
  // record()'s error when usage has nowhere to go, and the usage line's rules (their words and limits, which stayed in
  // every bundle while a module read them at its top level, unmarked: 0.4 KB gzipped).
  it.each([
    [
      'verify + decide',
      "export { checkEntitlement, createEntitlementVerifier, decide } from 'entitle'",
      false,
    ],
    ['the client', "export { createEntitlements } from 'entitle'", false],
    ['the React example', 'examples/react/app.ts', false],
    ['the client with metering', "export { createEntitlements, metering } from 'entitle'", true],
    ['the browser example', 'examples/browser/app.ts', true],
  ] as const)('bundles metering into %s only when it imports it', async (_name, what, meters) => {
    const result = await bundleForBrowser(what.startsWith('export') ? { contents: what } : what)
    const text = result.outputFiles[0]!.text
    for (const mark of ['entitle:caps', 'needs somewhere to send usage', 'a usage line is a JSON object'])
      expect({ mark, found: text.includes(mark) }).toEqual({ mark, found: meters })
  })
})

describe('browser bundle size', () => {
  // Budgets guard against growth; docs/browser.md records the figures (`npm run bench:size`, KB = 1 000 bytes) and
  // what stands between them and issue 31's aims (11, 20 and 25 KB). Each bundle is made as a user's bundler makes it:
  // from the built package, through its `browser` export condition. zod stays out because the schemas the package
  // exports are marked free of side effects, lru-cache because the browser build keeps its customer in a Map, and
  // jose's PEM reader because the browser build takes JWKs.
  it.each([
    // Claims checked without zod: 21.8 → 14.7 KB; no PEM reader: 13.8 KB; maps that log their entries: 13.9 KB.
    [
      'verify + decide',
      { contents: "export { checkEntitlement, createEntitlementVerifier, decide } from 'entitle'" },
      // Soft limits (their claims, read model and decision): 14.8 KB; per-resource grants (format v2): 15.9 KB;
      // floating-license pools, the lease check and the lease verifier: 17.2 KB; credits (their claims, burn order,
      // read model and decision step): 18.5 KB; claims and read model built in half the time (a union that does not
      // run a rule that cannot take the value, claims compared with the last ones seen instead of keyed): 18.8 KB;
      // the JWT claim rules ours, jose asked for the signature alone (compactVerify, not jwtVerify): 17.9 KB; the
      // customer's term and cap usage apart from the plan's features (a third of the heap a customer cost): 18.3 KB;
      // claims checked reading only the keys an object has, upgrade URLs parsed once (loading 12% faster): 18.5 KB;
      // the usage line's rules left out of an app that does not meter (every top-level read marked pure): 18.1 KB;
      // a region upper-cased only when it has lower case, listed codes found with includes: 18.2 KB; format version
      // 2's code (per-resource grants, pools, credits) a chunk loaded at the first token that says any of it (the
      // loader, the rules shared between the two files, and a bundler's wrappers): 18.7 KB.
      18_700,
    ],
    // Metering added about 5 KB (35.6 → 40.7 KB); no ky, zod or lru-cache: 31.4 KB; no PEM reader: 30.0 KB; 30.4 KB;
    // src/ in layers with every option checked: 32.6 KB (the cost of one concept a module, and of validation); the
    // second trust pass (caps a crash cannot reset, a journal per tab, polling for changes): 35.7 KB; soft limits and
    // usage alerts: 37.0 KB; per-resource grants, their metering and their fleet path: 39.4 KB; floating licenses (the
    // lease keeper, renewals, borrows): 43.4 KB; nothing started until the first use, renewal on checks: 43.9 KB; credits
    // (the local spend, holds, balances, the fleet's spendCredits path): 48.3 KB; decisions' shapes primed at load
    // (a check no longer slows 3.5x once limits of both magnitudes were decided): 48.6 KB; the claims check a quarter
    // faster (parallel arrays, a union that allocates nothing on success): 48.7 KB; checks with roles memoized (an
    // answer for each side of a role rule), record() spared a lookup in tokens without usage alerts: 49.0 KB; the
    // lease keeper a chunk loaded at the first lease() (what loads before a check: 47.1 KB, below), counted here with
    // the code that loads it and what a lazily loaded module costs in one file: 49.5 KB; claims and read model in half
    // the time: 49.7 KB; metering a plug-in the app passes (its record(), consume() and the actions it gives the
    // client, the errors that name it when it is missing): 50.3 KB; the usage endpoint apart from the others: 50.4 KB;
    // the JWT claim rules ours, jose asked for the signature alone: 49.5 KB; term and usage apart from features: 50.0 KB;
    // a customer's last answer reached from its entry, a larger memo table for clients of many customers: 50.1 KB;
    // claims checked reading only the keys an object has, one decoder for every body: 50.3 KB; the event stream a
    // chunk loaded when the client starts it (what loads before a check: 47.3 KB, below): 50.8 KB; the accessors of
    // the client's parts and lease handles shared, so that every client of a process stays in V8's fast mode: 50.9 KB;
    // record() summing into the counter (its open line's sums copied in on every path that reads the line): 51.1 KB;
    // format version 2's code a chunk loaded at the first token that says any of it: 51.6 KB.
    [
      'the client with metering (verify, decide, cache, refresh, metering)',
      { contents: "export { createEntitlements, metering } from 'entitle'" },
      51_600,
    ],
    // The client of an app that only checks (no metering plug-in imported): 38.2 KB, from the 49.8 KB it was when
    // every client carried metering; 37.7 KB once the usage endpoint (its answers, the line rules) left the license
    // server's client for the meter; 36.9 KB with the JWT claim rules ours; 37.3 KB with term and usage apart;
    // 37.4 KB with a customer's last answer reached from its entry; 37.7 KB with loading 12% faster; 37.3 KB with the
    // usage line's rules left out; 37.4 KB with the hot paths' objects kept in V8's fast mode and the memo table's own
    // unfrozen copies of role rules (a memoized check with roles in 0.8x the time); 37.7 KB with the event stream a
    // chunk of its own (the code that loads it, and the lazily loaded module's wrapper, in one file); 37.8 KB with the
    // accessors of its parts and lease handles shared (every client of a process, not only the first, in fast mode);
    // 38.2 KB with format version 2's code a chunk of its own.
    [
      'the client that checks (verify, decide, cache, refresh, events)',
      { contents: "export { createEntitlements } from 'entitle'" },
      38_200,
    ],
    // The client with localStorage and page hide (it meters searches): 45.2 KB with ky, 42.2 with zod and lru-cache,
    // 31.0, 33.1, 36.4, 37.7, 40.1, 44.2, 44.7, 49.0, 49.4, 49.5, 49.7, 50.2, 50.5 KB; 51.0, 51.2 KB with the plug-in; 50.3, 50.7, 50.8, 51.1 KB;
    // 51.2 KB with the hot paths kept inline in V8 (fast objects, unfrozen role copies, region and credit loops);
    // 51.6 KB with the event stream a chunk loaded when the client starts it; 51.7 KB with shared accessors; 51.9 KB
    // with record() summing into the counter; 52.3 KB with format version 2's code a chunk of its own.
    ['the browser example', 'examples/browser/app.ts', 52_300],
    // The React example with React and react-dom left out (the app has them anyway): 31.8, 34.1, 37.3, 38.6, 41.0, 45.1,
    // 45.7, 50.4, 50.5, 50.8, 51.3, 51.5 KB; it only checks, so without metering: 40.0, 39.5, 38.6, 39.1, 39.2, 39.5,
    // 39.1 KB (the usage line's rules left out); 39.3 KB with the hot paths kept inline in V8; 39.5 KB with the event
    // stream a chunk loaded when the client starts it; 39.6 KB with shared accessors; 39.9 KB with format version
    // 2's code a chunk of its own.
    ['the React example', 'examples/react/app.ts', 39_950],
  ])(
    "keeps %s within its gzipped budget, free of zod, lru-cache, the PEM reader and jose's JWT claim rules",
    async (_name, what, budget) => {
      const result = await bundleForBrowser(what)
      const inputs = Object.keys(result.metafile.inputs)
      expect(inputs).toContain('dist/index.browser.js')
      const kept = Object.entries(Object.values(result.metafile.outputs)[0]!.inputs)
        .filter(([, input]) => input.bytesInOutput > 0)
        .map(([path]) => path)
      expect(
        kept.filter((path) =>
          /node_modules\/(zod|lru-cache)\/|jose\/dist\/.*\/(asn1|jwt_claims_set)\.js/.test(path),
        ),
      ).toEqual([])
      // What a user's bundler would warn about, a user sees: the chunks of the browser build import nothing for its
      // side effects alone from a file the package marks free of them (esbuild warns of a bare import it ignores).
      expect(result.warnings.map((warning) => warning.text)).toEqual([])
      expect(gzipSync(result.outputFiles[0]!.contents).length).toBeLessThan(budget)
    },
  )

  // What a page downloads before its first check: the entry and the chunks it imports statically. Code the client
  // imports on first use (the lease keeper, at the first `lease()`) is a chunk the page fetches then, or never.
  it.each([
    // 47.1 KB: the client, 49.5 KB with every chunk counted (the budgets above), once the lease keeper, renewals and
    // borrows were loaded at the first lease(); 47.4 KB once claims and read model took half the time; 47.6 KB; the
    // client that only checks, once metering was a plug-in: 35.9 KB (48.0 KB with it); 35.5 KB (48.1) once the usage
    // endpoint moved to the meter; 34.6 KB (47.3) with the JWT claim rules ours instead of jose's jwtVerify; 35.0 KB
    // (47.7) with the customer's term and cap usage apart from the plan's features; 35.1 KB (47.8) with a customer's
    // last answer reached from its entry and the memo table sized for clients of many customers; 35.4 KB (48.0) once
    // claims were checked reading only the keys an object has and bodies shared one decoder (loading 12% faster);
    // 35.0 KB (48.0) with the usage line's rules left out of a client that does not meter; 35.1 KB (48.2) with the hot
    // paths kept inline in V8 (objects in fast mode, unfrozen copies of role rules, region and credit loops); 34.2 KB
    // (47.3) with the event stream a chunk loaded when the client starts it; 34.2 KB (47.3; the browser example 48.1,
    // the React example 36.0) with the accessors of the client's parts shared, so every client stays in fast mode;
    // with metering 47.5 KB (the browser example 48.3) with record() summing into the counter. Once format version
    // 2's code (per-resource grants, pools, credits: their claim rules, read model and decisions) was a chunk loaded
    // at the first token that says any of it: verify + decide 18.3 → 17.2 KB, the client 33.1 KB, with metering
    // 46.4 KB, the browser example 47.1 KB, the React example 34.9 KB.
    [
      'verify + decide',
      { contents: "export { checkEntitlement, createEntitlementVerifier, decide } from 'entitle'" },
      17_250,
    ],
    ['the client that checks', { contents: "export { createEntitlements } from 'entitle'" }, 33_150],
    [
      'the client with metering',
      { contents: "export { createEntitlements, metering } from 'entitle'" },
      46_450,
    ],
    ['the browser example', 'examples/browser/app.ts', 47_200],
    ['the React example', 'examples/react/app.ts', 34_950],
  ])(
    'loads %s before its first check within its gzipped budget, without the lease keeper, the event stream or format version 2',
    async (_name, what, budget) => {
      const result = await bundleForBrowser(what, true)
      expect(result.warnings.map((warning) => warning.text)).toEqual([])
      const { gzipped, files } = firstLoad(result)
      const firstFiles = result.outputFiles.filter((file) =>
        files.some((name) => file.path.endsWith(`/${name}`)),
      )
      const text = firstFiles.map((file) => file.text).join('\n')
      const inAChunk = (words: string) => result.outputFiles.some((file) => file.text.includes(words))
      // A pool's rule is in format version 2's chunk alone: only its claims check has it.
      expect(text).not.toContain('heartbeat must be less than ttl')
      expect(inAChunk('heartbeat must be less than ttl')).toBe(true)
      // The borrow store's key prefix is in the lease keeper's chunk alone.
      expect(text).not.toContain('entitle:borrow:')
      expect(inAChunk('entitle:borrow:')).toBe(true)
      // As is the event stream's word for a connection cut off.
      expect(text).not.toContain('the event stream was cut off')
      expect(inAChunk('the event stream was cut off')).toBe(true)
      expect(gzipped).toBeLessThan(budget)
    },
  )
})
