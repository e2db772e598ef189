import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'

describe('the quick-start demo (npm run demo)', () => {
  it('runs to the end and tells the story it promises', () => {
    const out = execFileSync(process.execPath, ['examples/quickstart/demo.mjs'], { encoding: 'utf8' })
    const verdict = (question: string) =>
      out
        .split('\n')
        .find((line) => line.startsWith(question))
        ?.slice(45)
    expect(verdict('Can Globex export?')).toBe('ALLOWED granted')
    expect(verdict('Custom domains (not in the plan)?')).toMatch(
      /^DENIED {2}not_in_plan → upgrade: enterprise https:/,
    )
    expect(verdict('Invite an 11th member?')).toMatch(/^DENIED {2}limit_exceeded 10\/10 used, 0 left/)
    expect(verdict('Make 50 more API calls?')).toMatch(
      /^DENIED {2}usage_cap_reached 9990\/10000 used, 10 left/,
    )
    expect(verdict('EU payments, user in California?')).toBe('DENIED  region_blocked')
    expect(out).toMatch(/export in 370 days \(term over, in grace\) +ALLOWED grace_period/)
    expect(out).toMatch(/a payload edited to Enterprise +DENIED {2}token_invalid \(signature_invalid\)/)
    expect(out).toMatch(/a 1 MB string +DENIED {2}token_invalid \(token_too_large\)/)
    expect(out).toMatch(
      /on the Team plan +sso DENIED {2}\(not_in_plan, fresh\); 11th seat DENIED \(limit_exceeded\)/,
    )
    expect(out).toContain('change event for globex: plan_changed, feature_added sso, limit_changed seats')
    expect(out).toMatch(
      /after the upgrade order +sso ALLOWED \(granted, fresh\); 11th seat ALLOWED \(granted\)/,
    )
  })
})
