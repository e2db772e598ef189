import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { defineConfig, type Options } from 'tsup'

/**
 * The browser build of the root entry: the same code, where a module has a `.browser.ts` twin beside it, the twin.
 * Two do: the client's bounded cache on a `Map` instead of `lru-cache` (a browser app holds one customer), and no
 * PEM import (a browser app takes the JWK). Chosen by bundlers through the `browser` export condition.
 */
const browserTwins: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'browser-twins',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (args) => {
      const twin = join(args.resolveDir, args.path.replace(/\.js$/, '.browser.ts'))
      return existsSync(twin) ? { path: twin } : undefined
    })
  },
}

/**
 * Source maps for the Node ESM build only, with the sources in them, so a debugger shows the TypeScript: maps for the
 * CommonJS copy too doubled the package (753 KB of 1.25 MB unpacked) for the same lines of code. None for the browser
 * build (470 KB: an app's bundler maps its own bundle, from this unminified code) nor for the CLI (167 KB).
 */
const esmMapsOnly: Options['esbuildOptions'] = (options, context) => {
  options.sourcemap = context.format === 'esm'
}

export default defineConfig([
  {
    // The library: runtime-neutral, ESM and CJS, with types.
    entry: {
      index: 'src/index.ts',
      testing: 'src/testing.ts',
      protocol: 'src/protocol/index.ts',
      browser: 'src/browser/index.ts',
      openfeature: 'src/openfeature/server.ts',
      'openfeature-web': 'src/openfeature/web.ts',
      react: 'src/react/index.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    // dist/ is emptied by `npm run build`: two configs build in parallel, so neither may clean.
    esbuildOptions: esmMapsOnly,
    target: 'es2022',
    platform: 'neutral',
    treeshake: true,
    splitting: false,
  },
  {
    // Node adapters (file storage): their own entry, so the root stays free of Node built-ins.
    entry: { node: 'src/node/index.ts', redis: 'src/redis/index.ts', express: 'src/express/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    tsconfig: 'tsconfig.node.json',
    esbuildOptions: esmMapsOnly,
    target: 'node20',
    platform: 'node',
    splitting: false,
  },
  {
    entry: { 'index.browser': 'src/index.ts' },
    format: ['esm'],
    esbuildPlugins: [browserTwins],
    target: 'es2022',
    platform: 'browser',
    treeshake: true,
    // Code loaded on first use (the lease keeper at the first `lease()`, the event stream when it starts, format
    // version 2's at the first token that says any of it) becomes a chunk of its own, which an app's bundler keeps
    // apart: a page that never needs it never downloads it. The Node builds keep it inline.
    splitting: true,
  },
  {
    // The command line: Node only, one ESM file with a shebang.
    entry: { cli: 'src/cli/bin.ts' },
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    banner: { js: '#!/usr/bin/env node' },
    // One file: code loaded on first use (format version 2's) is held inline, as in the Node library builds.
    splitting: false,
  },
])
