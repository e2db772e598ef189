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
    include: ['test/**/*.test.ts'],
    // The package tests build dist once; everything else is in-process.
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
  },
})
