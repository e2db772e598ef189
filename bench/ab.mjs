// `node bench/ab.mjs OLD_DIST [ROUNDS]`: `npm run bench` on an older build and on ./dist, alternately, ROUNDS times
// each (default 3), in one session on one machine, so both see the same noise; prints each row's ratio per run and
// the median per build. Build the old one first, e.g. `git worktree add /tmp/old <rev> && (cd /tmp/old && npm ci &&
// npm run build)`, then pass /tmp/old/dist.
import { execFileSync } from 'node:child_process'

const [oldDist, rounds = '3'] = process.argv.slice(2)
if (oldDist === undefined) {
  console.error('usage: node bench/ab.mjs OLD_DIST [ROUNDS]')
  process.exit(2)
}
const bench = new URL('./index.mjs', import.meta.url).pathname
/** One run of the bench on `dist`: its rows, as { name: ratio }. */
function run(dist) {
  const env = { ...process.env, ...(dist ? { ENTITLE_BENCH_DIST: dist } : {}) }
  const out = execFileSync(process.execPath, ['--expose-gc', bench], { env, encoding: 'utf8' })
  const rows = {}
  for (const line of out.split('\n')) {
    const match = /^(.+?)\s{2,}[\d,]+\s+[\d,]+\s+([\d.]+)x$/.exec(line)
    if (match) rows[match[1].trim()] = Number(match[2])
  }
  return rows
}
const runs = { old: [], new: [] }
for (let i = 0; i < Number(rounds); i++) {
  // Alternate which goes first: the first run of a pair was faster in earlier sessions, whichever build it was.
  const order = i % 2 === 0 ? ['old', 'new'] : ['new', 'old']
  for (const which of order) runs[which].push(run(which === 'old' ? oldDist : undefined))
}
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const names = Object.keys(runs.new[0])
const width = Math.max(...names.map((name) => name.length)) + 2
console.log(
  `${'row (ratio to its baseline; lower is faster)'.padEnd(width)} ${'old'.padStart(22)} ${'new'.padStart(22)}`,
)
for (const name of names) {
  const cell = (which) => {
    const values = runs[which].map((rows) => rows[name]).filter((v) => v !== undefined)
    return `${values.map((v) => v.toFixed(2)).join(' ')} | ${median(values)?.toFixed(2)}`.padStart(22)
  }
  console.log(`${name.padEnd(width)} ${cell('old')} ${cell('new')}`)
}
