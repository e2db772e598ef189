import { spawnSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

// Runs in a fresh Node process against the built package, as an app would: no close(), no explicit exit.
const script = `
import { createEntitlements } from 'entitle'
import { createTestIssuer } from 'entitle/testing'
const issuer = await createTestIssuer()
const token = await issuer.issue({ features: { export: true } }, { expiresInSec: 3600 })
const client = createEntitlements({ token: async () => token, ...issuer.verifyOptions })
const decision = await client.check('export')
console.log(decision.allowed ? 'allowed' : 'denied')
`

describe('a live client', () => {
  it('never keeps a Node process alive: its refresh and summary timers are unref’d', () => {
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(result.error).toBeUndefined() // a timeout would mean the process hung on a timer
    expect(result.stdout.trim()).toBe('allowed')
    expect(result.status).toBe(0)
  })
})

// A year-long license in a real Node process, on real timers: the renewal delay (about 270 days) is past what
// setTimeout can hold, which once made it fire at once, re-reading the license in a busy loop.
const yearLong = `
import { createEntitlements } from 'entitle'
import { createTestIssuer } from 'entitle/testing'
const issuer = await createTestIssuer()
const token = await issuer.issue({ features: { export: true } }, { expiresInSec: 365 * 86_400 })
let reads = 0
const client = createEntitlements({ token: async () => { reads++; return token }, ...issuer.verifyOptions })
await client.check('export')
await new Promise((resolve) => setTimeout(resolve, 1500))
await client.close()
console.log(reads)
`

describe('a year-long license on real timers', () => {
  it('reads its source once, with no TimeoutOverflowWarning', () => {
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', yearLong], {
      encoding: 'utf8',
      timeout: 20_000,
    })
    expect(result.status).toBe(0)
    expect(result.stdout.trim()).toBe('1')
    expect(result.stderr).not.toContain('TimeoutOverflowWarning')
  })
})
