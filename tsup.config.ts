import { defineConfig } from 'tsup'

export default defineConfig([
  {
    // The library: runtime-neutral, ESM and CJS, with types.
    entry: { index: 'src/index.ts', testing: 'src/testing.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    // dist/ is emptied by `npm run build`: two configs build in parallel, so neither may clean.
    sourcemap: true,
    target: 'es2022',
    platform: 'neutral',
    treeshake: true,
    splitting: false,
  },
  {
    // The command line: Node only, one ESM file with a shebang.
    entry: { cli: 'src/cli/bin.ts' },
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    sourcemap: true,
    banner: { js: '#!/usr/bin/env node' },
  },
])
