// Builds the TypeScript examples that run as programs (the reference license server and the demo) into
// examples/.build, with esbuild (already a dev dependency): packages stay imports, so `entitle` resolves to this
// package's own dist/ exactly as it would for a user, and hono, better-sqlite3 and express come from node_modules.
import { build } from 'esbuild'

await build({
  entryPoints: {
    'license-server': 'examples/license-server/src/main.ts',
    demo: 'examples/demo/demo.ts',
  },
  outdir: 'examples/.build',
  bundle: true,
  packages: 'external',
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
})
