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
