// `npm run bench:scale`: the client holding many customers. Each point (1, 1 000, 100 000 customers; 1 000 000 with
// --million, which needs about 12 GiB of heap today) runs in a process of its own (bench/scale-point.mjs), so no
// point's heap or JIT state colours another's. Reports heap per cached customer, checkSync and record() beside a
// Map on the same random keys, and loading (verify + install) beside raw crypto.verify on one core.
import { execFileSync } from 'node:child_process'

const points = [1, 1000, 100_000, ...(process.argv.includes('--million') ? [1_000_000] : [])]
const rows = []
for (const customers of points) {
  const heapMb = customers >= 1_000_000 ? 16_384 : 4096
  const out = execFileSync(
    process.execPath,
    ['--expose-gc', `--max-old-space-size=${heapMb}`, 'bench/scale-point.mjs', String(customers)],
    { encoding: 'utf8', maxBuffer: 1 << 20 },
  )
  rows.push(JSON.parse(out.trim().split('\n').pop()))
  process.stderr.write(`  ${customers} customers done\n`)
}
const n = (value, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits })
console.log(
  `${'customers'.padStart(10)} ${'heap/customer'.padStart(14)} ${'checkSync ns'.padStart(13)} ${'vs Map'.padStart(7)} ${'record ns'.padStart(10)} ${'vs Map'.padStart(7)} ${'loads/s'.padStart(8)} ${'raw verify/s'.padStart(13)} ${'of raw'.padStart(7)}`,
)
console.log('(at 1 customer, the heap column is the client itself; its load rate is one load)')
for (const row of rows)
  console.log(
    `${n(row.customers).padStart(10)} ${`${n(row.heapPerCustomer / 1024, 1)} KiB`.padStart(14)} ${n(row.check.ours).padStart(13)} ${`${n(row.check.ratio, 2)}x`.padStart(7)} ${n(row.record.ours).padStart(10)} ${`${n(row.record.ratio, 2)}x`.padStart(7)} ${n(row.loadsPerSecond).padStart(8)} ${n(row.rawVerifyPerSecond).padStart(13)} ${`${n((100 * row.loadsPerSecond) / row.rawVerifyPerSecond)}%`.padStart(7)}`,
  )
