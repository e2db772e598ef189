import { describe, expect, it } from 'vitest'
import { createRetryState, MAX_RETRY_AFTER_MS, retryAfterMs } from '../../src/transport/retry.js'

const NOW = Date.parse('2026-12-01T12:00:00Z')
const DAY = 86_400_000

describe('Retry-After', () => {
  it('reads seconds and HTTP dates, and ignores what is neither', () => {
    expect(retryAfterMs(null, NOW)).toBeUndefined()
    expect(retryAfterMs('120', NOW)).toBe(120_000)
    expect(retryAfterMs(' 7 ', NOW)).toBe(7000)
    expect(retryAfterMs('0', NOW)).toBe(0)
    expect(retryAfterMs(new Date(NOW + 90_000).toUTCString(), NOW)).toBe(90_000)
    expect(retryAfterMs(new Date(NOW - 90_000).toUTCString(), NOW)).toBe(0)
    for (const junk of ['', 'soon', '12abc']) expect(retryAfterMs(junk, NOW)).toBeUndefined()
    // Date.parse is lenient: these read as dates long past, which means "now", as a past HTTP date does.
    for (const past of ['-5', '1.5']) expect(retryAfterMs(past, NOW)).toBe(0)
  })

  it('asks for at most a day, however far the header points', () => {
    expect(MAX_RETRY_AFTER_MS).toBe(DAY)
    for (const far of ['86401', '99999999999', '9'.repeat(400), new Date(NOW + 3650 * DAY).toUTCString()])
      expect({ far, ms: retryAfterMs(far, NOW) }).toEqual({ far, ms: DAY })
  })

  it('is honoured over maxMs, so a retry state never waits less than it asks, nor more than a day', () => {
    const retry = createRetryState({
      initialMs: 1000,
      maxMs: 2000,
      random: () => 0.5,
      minMs: 0,
      resetAfterHealthyMs: 0,
    })
    expect(retry.recordFailure(NOW, retryAfterMs('120', NOW))).toBe(120_000)
    expect(retry.recordFailure(NOW, retryAfterMs('99999999999', NOW))).toBe(DAY)
    expect(retry.recordFailure(NOW, undefined)).toBe(1000)
  })
})
