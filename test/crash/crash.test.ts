import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createTestIssuer } from '../../src/testing.js'
import { runWorker } from './run.js'

// What a kill -9 at a bad moment must not do, with real processes on the built package and file storage.
const DAY = 86_400_000

describe('trusted time across a kill -9', () => {
  it('keeps the time of the first check: a token issued 10 days ago, checked, killed 1.5 s later, the clock set back 3 days: clock_rollback', async () => {
    const issuer = await createTestIssuer({ now: () => Date.now() - 10 * DAY })
    const token = await issuer.issue({ features: { export: true } }, { expiresInSec: 365 * 86_400 })
    const base = {
      token,
      keys: issuer.jwks,
      issuer: issuer.issuer,
      audience: issuer.audience,
      storageDir: mkdtempSync(join(tmpdir(), 'entitle-crash-time-')),
    }
    const first = await runWorker(
      { ...base, steps: [{ check: 'export' }, { hang: true }] },
      {
        killAfterLines: 1,
        killDelayMs: 1500,
      },
    )
    expect(first.said[0]).toMatchObject({ allowed: true, reason: 'granted' })
    expect(first.killed).toBe(true)
    const second = await runWorker({ ...base, clockOffsetMs: -3 * DAY, steps: [{ check: 'export' }] })
    expect(second.said).toEqual([
      { step: 'check', allowed: false, reason: 'clock_rollback', source: 'cache' },
    ])
  })
})
