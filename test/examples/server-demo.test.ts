import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

describe('the demo (npm run demo): license server + Express app, the whole loop', () => {
  it('runs to the end, tells the story it promises, and cleans up', () => {
    execFileSync(process.execPath, ['scripts/build-examples.mjs'], { encoding: 'utf8' })
    const out = execFileSync(process.execPath, ['examples/.build/demo.js'], {
      encoding: 'utf8',
      timeout: 60_000,
    })
    /** The `nth` row (from 0) with this label. */
    const row = (label: string, nth = 0) =>
      out
        .split('\n')
        .filter((line) => line.slice(3, 47).trimEnd() === label)
        [nth]?.slice(48)
    expect(row('order crm-1001')).toBe('license starter, 3 seats')
    expect(row('GET /api/reports/export (in the plan)')).toBe('200 ALLOWED')
    expect(row('GET /api/sso/config (not in Starter)')).toMatch(
      /^403 DENIED {2}not_in_plan → upgrade: \{"plan":"business"/,
    )
    for (let i = 1; i <= 5; i++) expect(row(`GET /api/search #${i}`)).toBe(`200 ALLOWED used ${i}/5`)
    expect(row('GET /api/search #6')).toMatch(/^429 DENIED {2}usage_cap_reached → upgrade: \{"plan":"team"/)
    expect(row('client flush')).toBe('1 line(s) sent, 0 pending')
    expect(row('server total for api-calls this month')).toBe('5')
    expect(row('change event in the app')).toMatch(
      /^plan_changed, feature_added sso, .*cap_changed api-calls/,
    )
    expect(row('GET /api/sso/config (now in the plan)')).toBe('200 ALLOWED')
    expect(row('GET /api/search')).toBe('200 ALLOWED used 6/100000')
    // A soft cap passed: allowed, billed as overage, alerted once in the app and recorded once on the server.
    expect(row('GET /api/search (call 100000)')).toBe('200 ALLOWED used 100000/100000')
    expect(row('GET /api/search (call 100002)')).toBe('200 ALLOWED used 100002/100000, 2 billed as overage')
    expect(out.split('\n').filter((line) => line.includes('threshold event in the app'))).toEqual([
      expect.stringMatching(/globex api-calls reached 80% \(99998 of 100000\)$/),
      expect.stringMatching(/globex api-calls reached 100% \(100000 of 100000\)$/),
    ])
    expect(row('server: this month')).toBe('100002 calls, 100000 included, 2 overage')
    expect(out.split('\n').filter((line) => line.includes('server: alert recorded once'))).toEqual([
      expect.stringMatching(/80% at 100002 calls$/),
      expect.stringMatching(/100% at 100002 calls$/),
    ])
    // Credits: the add-on's allowance arrives in the running app, is spent to nothing, and a top-up arrives too.
    expect(row('change event in the app', 1)).toBe(
      'feature_added ai-completion, credits_changed ai-credits 0 → 1000',
    )
    expect(row('GET /api/ai/complete, until refused')).toBe(
      '200 completions, then 402 DENIED  credits_exhausted',
    )
    expect(row('top-up crm-1004: change event in the app')).toBe('credits_changed ai-credits 1000 → 6000')
    expect(row('GET /api/ai/complete')).toBe('200 ALLOWED, 4995 credits left')
    expect(row('server ledger')).toBe('1005 spent, 4995 available')
    expect(row('GET /api/reports/export')).toBe('403 DENIED  revoked')
    expect(out).toContain('examples/license-server/src/app.ts')
    const folder = /SQLite in (\S+)\)/.exec(out)?.[1]
    expect(folder).toBeDefined()
    expect(() => execFileSync('test', ['-e', folder!])).toThrow()
  })
})
