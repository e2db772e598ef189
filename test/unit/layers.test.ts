import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

/**
 * The layers of `src/`, lowest first (`src/README.md` draws them). A module may import its own layer and the
 * layers below; an adapter is a leaf that only its own folder and the package's entry points import.
 */
const LAYERS = ['platform', 'core', 'protocol', 'transport', 'usage', 'client'] as const
const ADAPTERS = ['node', 'browser', 'redis', 'express', 'react', 'openfeature', 'cli'] as const
const ENTRIES = ['index.ts', 'testing.ts']

const SRC = resolve(__dirname, '../../src')

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? files(join(dir, entry.name))
      : entry.name.endsWith('.ts')
        ? [join(dir, entry.name)]
        : [],
  )
}

/** The top folder of a file under src/ (`core`, `client`…), or the file name for a file at the root. */
const placeOf = (file: string) => relative(SRC, file).split('/')[0]!

function rankOf(place: string): number {
  const layer = LAYERS.indexOf(place as (typeof LAYERS)[number])
  if (layer >= 0) return layer
  return LAYERS.length
}

/** Every relative import of a file, resolved to the file it names. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const found: string[] = []
  for (const match of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g))
    found.push(resolve(dirname(file), match[1]!.replace(/\.js$/, '.ts')))
  return found
}

describe('src/ in layers', () => {
  const all = files(SRC)

  it('has no file at its root but the entry points', () => {
    const roots = all.filter((file) => dirname(file) === SRC).map((file) => relative(SRC, file))
    expect(roots.sort()).toEqual([...ENTRIES].sort())
  })

  it('has every folder in a layer or among the adapters', () => {
    const places = new Set(all.filter((file) => dirname(file) !== SRC).map(placeOf))
    for (const place of places) expect([...LAYERS, ...ADAPTERS]).toContain(place)
  })

  it('never imports up a layer, and never into an adapter from outside it', () => {
    const wrong: string[] = []
    for (const file of all) {
      const from = placeOf(file)
      for (const target of importsOf(file)) {
        const to = placeOf(target)
        const entry = ENTRIES.includes(from)
        if ((ADAPTERS as readonly string[]).includes(to)) {
          if (to !== from && !entry) wrong.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`)
          continue
        }
        if (!entry && rankOf(to) > rankOf(from))
          wrong.push(`${relative(SRC, file)} -> ${relative(SRC, target)}`)
      }
    }
    expect(wrong).toEqual([])
  })

  it('imports no node: module in the platform or the core (they run in every runtime)', () => {
    for (const file of all.filter((path) => ['platform', 'core'].includes(placeOf(path)))) {
      const text = readFileSync(file, 'utf8')
      expect({ file, node: /from 'node:/.test(text) }).toEqual({ file, node: false })
    }
  })
})
