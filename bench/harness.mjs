// A small benchmark harness: every figure is a ratio against a baseline measured in the same process, in
// interleaved rounds, so that a shared, noisy machine moves both sides together. Medians, not means.

/**
 * Runs `fn` (sync or async, one operation per call) for about `ms` and returns operations per second. With
 * `inFlight` > 1, async operations are started that many at a time, as concurrent requests would.
 */
export async function opsPerSecond(fn, ms = 300, inFlight = 1) {
  let ops = 0
  const start = performance.now()
  let elapsed = 0
  const batch = new Array(inFlight)
  while (elapsed < ms) {
    for (let i = 0; i < 64; i++) {
      if (inFlight === 1) {
        const result = fn()
        if (result instanceof Promise) await result
      } else {
        for (let j = 0; j < inFlight; j++) batch[j] = fn()
        await Promise.all(batch)
      }
    }
    ops += 64 * inFlight
    elapsed = performance.now() - start
  }
  return (ops / elapsed) * 1000
}

/** Measures `subject` against `baseline` in `rounds` alternating rounds; returns medians and their ratio. */
export async function compare(name, subject, baseline, { rounds = 7, ms = 300, inFlight = 1 } = {}) {
  await opsPerSecond(subject, 100, inFlight)
  await opsPerSecond(baseline, 100, inFlight)
  const ours = []
  const base = []
  for (let round = 0; round < rounds; round++) {
    ours.push(await opsPerSecond(subject, ms, inFlight))
    base.push(await opsPerSecond(baseline, ms, inFlight))
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]
  const row = { name, ours: median(ours), baseline: median(base) }
  row.ratio = row.baseline / row.ours
  return row
}

export function report(rows) {
  const format = (n) => Math.round(n).toLocaleString('en-US').padStart(12)
  const width = Math.max(...rows.map((row) => row.name.length)) + 2
  console.log(
    `${'benchmark'.padEnd(width)} ${'ours ops/s'.padStart(12)} ${'baseline'.padStart(12)}  ours is slower by`,
  )
  for (const row of rows) {
    console.log(
      `${row.name.padEnd(width)} ${format(row.ours)} ${format(row.baseline)}  ${row.ratio.toFixed(2)}x`,
    )
  }
}
