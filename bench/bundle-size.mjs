// `npm run bench:size`: what a browser app pays for entitle, minified and gzipped, bundled the way a user's bundler
// does it (esbuild, the package's `browser` export condition, the built `dist/`). Sizes do not vary between runs,
// so this is the one bench with absolute figures. KB here is 1 000 bytes.
//
// `-- --peers DIR` also weighs other SDKs installed in DIR (`npm install <name>` there first; this repository does
// not depend on them), each through what an app imports to start it, with the same settings.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'
import { firstLoad } from './first-load.mjs'

const root = new URL('..', import.meta.url).pathname

/** What an app of each kind imports. */
const OURS = [
  [
    'verify + decide (offline)',
    "export { checkEntitlement, createEntitlementVerifier, decide } from 'entitle'",
  ],
  ['client that checks (verify, cache, refresh, events)', "export { createEntitlements } from 'entitle'"],
  [
    'client with metering (record, consume, reserve, fleet)',
    "export { createEntitlements, metering } from 'entitle'",
  ],
  ['browser example (client, localStorage, page hide)', { entry: 'examples/browser/app.ts' }],
  ['React example, React itself left out', { entry: 'examples/react/app.ts' }],
  // A reference row: jose's part of the verify path on its own.
  [
    'jose: jwtVerify and both JWK Set kinds',
    "export { jwtVerify, createLocalJWKSet, createRemoteJWKSet } from 'jose'",
  ],
]

const PEERS = [
  ['launchdarkly-js-client-sdk', "export { initialize } from 'launchdarkly-js-client-sdk'"],
  ['@launchdarkly/js-client-sdk', "export { createClient } from '@launchdarkly/js-client-sdk'"],
  ['@statsig/js-client', "export { StatsigClient } from '@statsig/js-client'"],
  ['@stigg/js-client-sdk', "export { Stigg } from '@stigg/js-client-sdk'"],
  ['posthog-js', "export { default } from 'posthog-js'"],
  ['flagsmith', "export { default } from 'flagsmith'"],
  ['unleash-proxy-client', "export { UnleashClient } from 'unleash-proxy-client'"],
  ['@openfeature/web-sdk', "export { OpenFeature } from '@openfeature/web-sdk'"],
]

/** Bundles `what` as an app's bundler does: in one file, or split where the code imports on first use. */
function bundle(what, dir, splitting) {
  const source =
    typeof what === 'string'
      ? { stdin: { contents: what, resolveDir: dir, sourcefile: 'app.js' } }
      : { entryPoints: [join(dir, what.entry)] }
  return build({
    ...source,
    absWorkingDir: dir,
    bundle: true,
    platform: 'browser',
    format: 'esm',
    minify: true,
    write: false,
    logLevel: 'silent',
    external: ['react', 'react/*', 'react-dom', 'react-dom/*'],
    ...(splitting ? { splitting: true, outdir: join(dir, '.size-out'), metafile: true } : {}),
  })
}

async function weigh(what, dir) {
  const bytes = (await bundle(what, dir, false)).outputFiles[0].contents
  const split = await bundle(what, dir, true)
  return {
    minified: bytes.length,
    gzipped: gzipSync(bytes).length,
    first: firstLoad(split).gzipped,
  }
}

const kb = (bytes) => `${(bytes / 1000).toFixed(1)} KB`
const row = (name, size) =>
  console.log(
    `| ${name} | ${kb(size.minified).padStart(8)} | ${kb(size.gzipped).padStart(8)} | ${kb(size.first).padStart(8)} |`,
  )

console.log('| bundle | minified | gzipped, every chunk | gzipped, before first use |\n|---|---:|---:|---:|')
for (const [name, what] of OURS) row(name, await weigh(what, root))

const at = process.argv.indexOf('--peers')
if (at !== -1) {
  const dir = process.argv[at + 1]
  for (const [name, contents] of PEERS) {
    let version
    try {
      version = JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')).version
    } catch {
      console.log(`| ${name} | not installed in ${dir} | |`)
      continue
    }
    row(`${name} ${version}`, await weigh(contents, dir))
  }
}
