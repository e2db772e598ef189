// The build the benches measure: ./dist, or the one ENTITLE_BENCH_DIST names (an older build, for `bench/ab.mjs`).
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

const dir = process.env.ENTITLE_BENCH_DIST
  ? `${pathToFileURL(resolve(process.env.ENTITLE_BENCH_DIST)).href}/`
  : new URL('../dist/', import.meta.url).href

// `metering` is undefined in a build from before it was a plug-in (which metered without it).
export const { createEntitlements, createEntitlementVerifier, decide, metering } = await import(
  `${dir}index.js`
)
export const { createTestIssuer } = await import(`${dir}testing.js`)
export const { createRedisUsageStore } = await import(`${dir}redis.js`)
export const { createFileStorage } = await import(`${dir}node.js`)
