import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { expect } from 'vitest'
import type { createEntitlements } from '../../src/index.js'

/**
 * The build a page gets (the `browser` condition), imported as its native ES modules, chunks and all, once it is
 * checked that the code holding `marker` is in the chunk `chunk-*.js` the entry imports on first use, and not in the
 * entry itself: a page that never uses that part never fetches it.
 */
export async function importBrowserBuild(
  chunk: string,
  marker: string,
): Promise<{ createEntitlements: typeof createEntitlements }> {
  const dist = join(process.cwd(), 'dist')
  const entry = readFileSync(join(dist, 'index.browser.js'), 'utf8')
  const file = new RegExp(`import\\(["']\\./(${chunk}-[\\w-]+\\.js)["']\\)`).exec(entry)?.[1]
  expect(readdirSync(dist)).toContain(file)
  expect(entry).not.toContain(marker)
  expect(readFileSync(join(dist, file!), 'utf8')).toContain(marker)
  return import(pathToFileURL(join(dist, 'index.browser.js')).href)
}
