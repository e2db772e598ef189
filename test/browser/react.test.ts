import { describe, expect, it } from 'vitest'
import { driveReactExample, reactInstall } from './drive-react.js'

describe.each([19, 18] as const)('the React example on React %i, in headless Chromium', (major) => {
  it('renders on the server from a snapshot, hydrates with no mismatch, and re-renders on an upgrade with no reload', async () => {
    const result = await driveReactExample(major, reactInstall(major))
    // Server-rendered: the answers are in the HTML, not a loading state.
    expect(result.rendered).toContain('<span id="plan">starter</span>')
    expect(result.rendered).toContain('<span id="sso">upgrade to business</span>')
    expect(result.beforeUpgrade).toEqual({ plan: 'starter', export: 'allowed', sso: 'upgrade to business' })
    expect(result.hydrated).toEqual({ plan: 'starter', sso: 'upgrade to business' })
    expect(result.afterUpgrade).toEqual({ plan: 'business', sso: 'on', reloaded: false })
    expect(result.errors).toEqual([])
    const expected = major === 18 ? ['18.3.1'] : [expect.stringMatching(/^19\./)]
    expect(result.reactVersions).toEqual({ browser: expected, server: expected })
  }, 60_000)
})
