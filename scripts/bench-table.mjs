// The figures table of docs/performance.md, made from the last session recorded in bench/runs.json (`npm run bench
// -- --record`, run a few times in a row): every row's range over the session's runs, with the date, the machine,
// Node and the command. `--write` puts it in the page between its markers; without it, prints it. The docs test
// (test/docs/figures.test.ts) fails when the page and the file disagree.
import { readFileSync, writeFileSync } from 'node:fs'

const PAGE = new URL('../docs/performance.md', import.meta.url)
export const START = '<!-- bench:figures (made by scripts/bench-table.mjs from bench/runs.json) -->'
export const END = '<!-- /bench:figures -->'

/**
 * The runs of the last session: the last date's runs on the last run's machine and Node, of the same build (a
 * session of the day's second build is not mixed with the first's; runs recorded before builds were named have none).
 */
export function lastSession(runs) {
  const last = runs.at(-1)
  return runs.filter(
    (run) =>
      run.date === last.date &&
      run.machine === last.machine &&
      run.node === last.node &&
      run.build === last.build,
  )
}

export function figuresTable(runs) {
  const session = lastSession(runs)
  const first = session[0]
  const range = (values, format) => {
    const low = Math.min(...values)
    const high = Math.max(...values)
    return low === high ? format(low) : `${format(low)}–${format(high)}`
  }
  const count = (n) => n.toLocaleString('en-US')
  const times = (n) => `${n.toFixed(2)}x`
  const lines = [
    `${session.length} runs of \`${first.command}\` on ${first.date}: ${first.machine}, Node ${first.node.slice(1)}.`,
    'Each figure is the range over those runs (each run: medians of 7 alternating rounds).',
    '',
    '| row | ours ops/s | baseline ops/s | ours is slower by |',
    '| --- | ---: | ---: | ---: |',
  ]
  // Every row any run of the session has, in the order of the run that has most: a row added during a session
  // gives the range over the runs that have it, and says over how many.
  const fullest = session.reduce((most, run) => (run.rows.length > most.rows.length ? run : most), first)
  for (const { name } of fullest.rows) {
    const rows = session.map((run) => run.rows.find((row) => row.name === name)).filter(Boolean)
    const label =
      rows.length === session.length ? name : `${name} (${rows.length} of the ${session.length} runs)`
    lines.push(
      `| ${label} | ${range(
        rows.map((row) => row.ours),
        count,
      )} | ${range(
        rows.map((row) => row.baseline),
        count,
      )} | ${range(
        rows.map((row) => row.ratio),
        times,
      )} |`,
    )
  }
  lines.push(
    '',
    `Memory held by the client per cached customer: ${range(
      session.map((run) => run.memory.perCustomerKiB),
      (n) => n.toFixed(2),
    )} KiB; by the usage meter after 1 000 000 records over 1 000 customers and 20 metrics: ${range(
      session.map((run) => run.memory.meterMiB),
      (n) => n.toFixed(1),
    )} MiB in ${first.memory.meterLines.toLocaleString('en-US')} lines (heap, after GC).`,
  )
  return lines.join('\n')
}

export function withFigures(page, table) {
  const start = page.indexOf(START)
  const end = page.indexOf(END)
  if (start < 0 || end < start) throw new Error(`docs/performance.md has no ${START} … ${END} block`)
  return `${page.slice(0, start + START.length)}\n\n${table}\n\n${page.slice(end)}`
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const runs = JSON.parse(readFileSync(new URL('../bench/runs.json', import.meta.url), 'utf8'))
  const table = figuresTable(runs)
  if (process.argv.includes('--write')) writeFileSync(PAGE, withFigures(readFileSync(PAGE, 'utf8'), table))
  else console.log(table)
}
