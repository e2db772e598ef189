import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)

describe('the floating-license demo (npm run demo:floating), real processes', () => {
  it('a holder killed with SIGKILL keeps its seat until its lease runs out, and not after: the other gets it', async () => {
    execFileSync(process.execPath, ['scripts/build-examples.mjs'])
    const { stdout } = await run(process.execPath, ['examples/.build/floating.js'], { timeout: 60_000 })
    expect(stdout).toMatch(/\[workstation-1\] holds the seat/)
    expect(stdout).toMatch(/\[workstation-1\] check\('desktop'\): allowed \(granted\)/)
    expect(stdout).toMatch(/\[workstation-2\] denied: pool_full, 1 of 1 in use/)
    const leaseLeft = Number(/its lease ends ([\d.]+) s from now/.exec(stdout)?.[1])
    const takenAfter = Number(/workstation-2 got the seat ([\d.]+) s after the kill/.exec(stdout)?.[1])
    // The seat stayed held for the rest of the dead holder's lease (the lease token's end is the server's, cut to the
    // second, so the seat frees at or after it), and came free within one lease length (15 s) and a retry (5 s).
    expect(takenAfter).toBeGreaterThanOrEqual(leaseLeft)
    expect(takenAfter).toBeLessThan(20)
    expect(stdout).toMatch(/\[workstation-2\] check\('desktop'\): allowed \(granted\)/)
  }, 90_000)
})
