// `npm run bench:scale`: the client holding many customers. Each point (1, 1 000, 100 000 customers; 1 000 000 with
// --million, which takes about 10 minutes here, most of it signing the tokens) runs in a process of its own
// (bench/scale-point.mjs), so no point's heap or JIT state colours another's. Reports heap per cached customer
// (after loading, and in use: with answers and usage lines held), checkSync (one feature; 15 in rotation) and record()
// beside a Map on the same random keys, and loading (verify + install) beside jose.jwtVerify on the same tokens and
// raw crypto.verify on one core and on every core.
import { execFileSync } from 'node:child_process'

const points = [1, 1000, 100_000, ...(process.argv.includes('--million') ? [1_000_000] : [])].map((n) => [n])
// The heavier token shape (bench/heavier-token.mjs) at 100 000 customers, with --heavier (issue 31 aims both shapes
// at 1 KiB a customer).
if (process.argv.includes('--heavier')) points.push([100_000, 'heavier'])
const rows = []
for (const [customers, token] of points) {
  const heapMb = customers >= 1_000_000 ? 12_288 : 4096
  const out = execFileSync(
    process.execPath,
    [
      '--expose-gc',
      `--max-old-space-size=${heapMb}`,
      'bench/scale-point.mjs',
      String(customers),
      token ?? '',
    ],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  )
  rows.push(JSON.parse(out.trim().split('\n').pop()))
  process.stderr.write(`  ${customers} customers${token ? ` (${token} token)` : ''} done\n`)
}
const n = (value, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits })
const columns = [
  ['customers', 10, (row) => `${n(row.customers)}${row.token === 'heavier' ? 'h' : ''}`],
  ['heap/customer', 14, (row) => `${n(row.heapPerCustomer / 1024, 2)} KiB`],
  ['in use', 10, (row) => `${n(row.heapPerCustomerInUse / 1024, 2)} KiB`],
  ['check 1 ns', 11, (row) => n(row.checkOne.ours)],
  ['vs Map', 7, (row) => `${n(row.checkOne.ratio, 2)}x`],
  ['check 15 ns', 12, (row) => n(row.check.ours)],
  ['vs Map', 7, (row) => `${n(row.check.ratio, 2)}x`],
  ['record ns', 10, (row) => n(row.record.ours)],
  ['vs Map', 7, (row) => `${n(row.record.ratio, 2)}x`],
  ['loads/s', 8, (row) => n(row.loadsPerSecond)],
  ['jose/s', 7, (row) => n(row.joseLoadsPerSecond)],
  ['of jose', 8, (row) => `${n((100 * row.loadsPerSecond) / row.joseLoadsPerSecond)}%`],
  ['raw 1 core', 11, (row) => n(row.rawVerifyPerSecond)],
  ['raw all', 8, (row) => n(row.rawAllCoresPerSecond)],
  ['of all', 7, (row) => `${n((100 * row.loadsPerSecond) / row.rawAllCoresPerSecond)}%`],
]
console.log(columns.map(([name, width]) => name.padStart(width)).join(' '))
console.log('(at 1 customer, the heap columns are the client itself; its load rate is one load)')
console.log('(a customer count marked h: the heavier token, bench/heavier-token.mjs)')
for (const row of rows) console.log(columns.map(([, width, cell]) => cell(row).padStart(width)).join(' '))
