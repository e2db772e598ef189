import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vitest/config'

export default defineConfig({
  // Examples import the package by name, as users do; in tests that name means the source.
  resolve: {
    alias: [
      {
        find: /^entitle\/node$/,
        replacement: fileURLToPath(new URL('./src/node/index.ts', import.meta.url)),
      },
      {
        find: /^entitle\/openfeature\/web$/,
        replacement: fileURLToPath(new URL('./src/openfeature/web.ts', import.meta.url)),
      },
      {
        find: /^entitle\/openfeature$/,
        replacement: fileURLToPath(new URL('./src/openfeature/server.ts', import.meta.url)),
      },
      {
        find: /^entitle\/express$/,
        replacement: fileURLToPath(new URL('./src/express/index.ts', import.meta.url)),
      },
      {
        find: /^entitle\/redis$/,
        replacement: fileURLToPath(new URL('./src/redis/index.ts', import.meta.url)),
      },
      {
        find: /^entitle\/react$/,
        replacement: fileURLToPath(new URL('./src/react/index.ts', import.meta.url)),
      },
      {
        find: /^entitle\/react$/,
        replacement: fileURLToPath(new URL('./src/react/index.ts', import.meta.url)),
      },
      {
        find: /^entitle\/browser$/,
        replacement: fileURLToPath(new URL('./src/browser/index.ts', import.meta.url)),
      },
      {
        find: /^entitle\/protocol$/,
        replacement: fileURLToPath(new URL('./src/protocol/index.ts', import.meta.url)),
      },
      {
        find: /^entitle\/testing$/,
        replacement: fileURLToPath(new URL('./src/testing.ts', import.meta.url)),
      },
      { find: /^entitle$/, replacement: fileURLToPath(new URL('./src/index.ts', import.meta.url)) },
    ],
  },
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    // `npm test` runs every project; `npm test -- --project unit` is the inner loop (no build, no processes).
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          // In-process: pure functions, the client on a manual clock and msw, adapters on loopback.
          include: [
            'test/unit/**/*.test.ts',
            'test/client/**/*.test.ts',
            'test/openfeature/**/*.test.ts',
            'test/express/**/*.test.ts',
            'test/integration/rfc8037.test.ts',
            'test/integration/remote-jwks.test.ts',
          ],
          exclude: ['test/client/process-exit.test.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          // The reference server, Redis, real processes, the CLI and the examples: some read dist/.
          include: [
            'test/server/**/*.test.ts',
            'test/fleet/**/*.test.ts',
            'test/cli/**/*.test.ts',
            'test/examples/**/*.test.ts',
            'test/integration/usage-soak.test.ts',
            'test/client/process-exit.test.ts',
            'test/crash/**/*.test.ts',
          ],
          globalSetup: ['test/global-setup.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'package',
          // The packed artifact as users get it: exports, bundles, docs snippets, the browser.
          include: ['test/package/**/*.test.ts', 'test/docs/**/*.test.ts', 'test/browser/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
        },
      },
    ],
  },
})
