import { describe, expect, it } from 'vitest'
import { driveBrowserExample } from './drive.js'

describe('the browser example in headless Chromium', () => {
  it('verifies its license, shows what is allowed, meters, and sends the usage when the page goes away', async () => {
    const result = await driveBrowserExample()
    expect(result.shown).toEqual({
      export: 'allowed',
      sso: 'denied: not_in_plan',
      apiCalls: 'allowed, 4 left',
    })
    expect(result.stored).toContain('entitle/entitle:token:')
    expect(result.sentBeforeLeaving).toBe(0)
    expect(result.usageAfterLeaving).toBe(3)
    expect(result.errors).toEqual([])
  })
})
