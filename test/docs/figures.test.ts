import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

// docs/performance.md's figures are the last bench session recorded in bench/runs.json (`npm run bench -- --record`,
// then `node scripts/bench-table.mjs --write`): a page edited by hand, or a run recorded and not written, fails here.

interface BenchTable {
  figuresTable(runs: unknown[]): string
  withFigures(page: string, table: string): string
  lastSession(runs: unknown[]): Array<{ date: string; rows: Array<{ name: string }> }>
}
const script = new URL('../../scripts/bench-table.mjs', import.meta.url).href

/** A Markdown table as the formatter may pad it: the same cells. */
const cells = (text: string) =>
  text
    .split('\n')
    .map((line) => line.replace(/\s+/g, ' ').replace(/-{3,}/g, '---').trim())
    .join('\n')

type Session = Array<{ rows: Array<{ name: string; ours: number; ratio: number }> }>

/** Figures other pages quote from the table: each must be the session's range (to within rounding, 10%). */
const DECIDE = 'decide (verified token, metered cap) vs Map.get'
const QUOTES: Array<{ page: string; pattern: RegExp; row: string; unit: 'ns' | 'µs' | 'x' | 'ops' }> = [
  { page: 'README.md', pattern: /about ([\d,.]+)–([\d,.]+) ns a decision/, row: DECIDE, unit: 'ns' },
  { page: 'docs/concepts.md', pattern: /from\nmemory, in ([\d,.]+)–([\d,.]+) ns/, row: DECIDE, unit: 'ns' },
  {
    page: 'docs/concepts.md',
    pattern: /one at a time, ([\d,.]+)–([\d,.]+) µs/,
    row: 'verify EdDSA, one at a time vs crypto.verify',
    unit: 'µs',
  },
  {
    page: 'docs/fleets.md',
    pattern: /([\d.]+)–([\d.]+)x a bare `INCRBY`/,
    row: 'consume() on Redis, 32 in flight vs INCRBY',
    unit: 'x',
  },
  {
    page: 'docs/fleets.md',
    pattern: /measures ([\d,]+) to ([\d,]+) a second/,
    row: 'consume() on Redis, 32 in flight vs INCRBY',
    unit: 'ops',
  },
  {
    page: 'docs/client.md',
    pattern: /`npm run bench`: ([\d.]+)–([\d.]+)x a bare `Map` check-and-add/,
    row: 'consumeSync() in process, one customer vs Map check-and-add',
    unit: 'x',
  },
  {
    page: 'docs/metering.md',
    pattern: /`npm run bench` records ([\d,]+) to ([\d,]+) a\s+second/,
    row: 'record(), aggregated, random of 1000 customers x 20 metrics vs Map',
    unit: 'ops',
  },
  {
    page: 'docs/performance.md',
    pattern: /decision on an already-verified token costs ([\d,.]+)–([\d,.]+) ns/,
    row: DECIDE,
    unit: 'ns',
  },
  {
    page: 'docs/performance.md',
    pattern: /\*\*`checkSync` is ([\d.]+)–([\d.]+)x the bare baseline\*\* in the full bench/,
    row: 'checkSync, warm cache of 10000 customers vs Map.get',
    unit: 'x',
  },
]

function derived(session: Session, row: string, unit: 'ns' | 'µs' | 'x' | 'ops'): [number, number] {
  const rows = session.map((run) => run.rows.find((found) => found.name === row)!)
  const ops = rows.map((found) => found.ours)
  const ratios = rows.map((found) => found.ratio)
  if (unit === 'x') return [Math.min(...ratios), Math.max(...ratios)]
  if (unit === 'ops') return [Math.min(...ops), Math.max(...ops)]
  const per = unit === 'ns' ? 1e9 : 1e6
  return [per / Math.max(...ops), per / Math.min(...ops)]
}

describe('the performance figures', () => {
  it('quoted on other pages are the recorded session figures, to within rounding', async () => {
    const { lastSession } = (await import(script)) as BenchTable
    const session = lastSession(JSON.parse(readFileSync('bench/runs.json', 'utf8'))) as unknown as Session
    for (const quote of QUOTES) {
      const found = quote.pattern.exec(readFileSync(quote.page, 'utf8'))
      expect(found, `${quote.page}: ${quote.pattern}`).not.toBeNull()
      const quoted = [Number(found![1]!.replace(/,/g, '')), Number(found![2]!.replace(/,/g, ''))]
      const [low, high] = derived(session, quote.row, quote.unit)
      const near = (a: number, b: number) => Math.abs(a - b) <= 0.1 * b
      expect(
        { page: quote.page, quoted, near: near(quoted[0]!, low) && near(quoted[1]!, high) },
        `${quote.page} quotes ${quoted.join('–')} ${quote.unit}; the session says ${low.toPrecision(3)}–${high.toPrecision(3)}`,
      ).toEqual({ page: quote.page, quoted, near: true })
    }
  })

  it('are the last bench session recorded in bench/runs.json, with its date, machine and command', async () => {
    const { figuresTable, withFigures, lastSession } = (await import(script)) as BenchTable
    const runs = JSON.parse(readFileSync('bench/runs.json', 'utf8')) as unknown[]
    const session = lastSession(runs)
    expect(session.length).toBeGreaterThanOrEqual(3)
    const page = readFileSync('docs/performance.md', 'utf8')
    expect(cells(page)).toBe(cells(withFigures(page, figuresTable(runs))))
    // Every row of the session is on the page, each with its range.
    for (const run of session) for (const { name } of run.rows) expect(page).toContain(name)
  })
})
