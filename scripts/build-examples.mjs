// Builds the TypeScript examples that run as programs (the reference license server, its order command and the
// demo) into examples/.build, with esbuild (already a dev dependency), in about a second and quietly. `entitle`
// and its subpaths resolve to this package's sources, so nothing else needs building first; the packed package is
// tested as a user installs it by test/package/. hono, better-sqlite3 and express come from node_modules.
import { build } from 'esbuild'

const source = (path) => new URL(`../src/${path}`, import.meta.url).pathname
const ENTITLE = {
  entitle: source('index.ts'),
  'entitle/protocol': source('protocol/index.ts'),
  'entitle/node': source('node/index.ts'),
  'entitle/express': source('express/index.ts'),
  'entitle/testing': source('testing.ts'),
  'entitle/react': source('react/index.ts'),
}

/** Resolves `entitle…` to the sources; every other package stays an import. */
const entitleFromSource = {
  name: 'entitle-from-source',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^entitle(\/.*)?$/ }, (args) =>
      ENTITLE[args.path]
        ? { path: ENTITLE[args.path] }
        : { errors: [{ text: `no source for ${args.path}` }] },
    )
    pluginBuild.onResolve({ filter: /^[^./]/ }, (args) =>
      args.path in ENTITLE ? undefined : { external: true },
    )
  },
}

await build({
  entryPoints: {
    'license-server': 'examples/license-server/src/main.ts',
    order: 'examples/license-server/src/order.ts',
    demo: 'examples/demo/demo.ts',
    examples: 'examples/serve/main.ts',
    floating: 'examples/floating/demo.ts',
    'floating-holder': 'examples/floating/holder.ts',
  },
  outdir: 'examples/.build',
  bundle: true,
  plugins: [entitleFromSource],
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
})
