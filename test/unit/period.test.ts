import { describe, expect, it } from 'vitest'
import { currentWindowEnd } from '../../src/index.js'

const at = (iso: string) => Date.parse(iso)

describe('currentWindowEnd', () => {
  it('keeps the window while it is open', () => {
    expect(currentWindowEnd('month', at('2026-02-01T00:00:00Z'), at('2026-01-20T00:00:00Z'))).toBe(
      at('2026-02-01T00:00:00Z'),
    )
  })

  it('moves fixed-length windows forward arithmetically', () => {
    const end = at('2026-01-01T10:00:00Z')
    expect(currentWindowEnd('hour', end, end)).toBe(at('2026-01-01T11:00:00Z'))
    expect(currentWindowEnd('hour', end, at('2026-01-01T13:30:00Z'))).toBe(at('2026-01-01T14:00:00Z'))
    expect(currentWindowEnd('day', end, at('2026-01-03T09:59:59Z'))).toBe(at('2026-01-03T10:00:00Z'))
    expect(currentWindowEnd('week', end, at('2026-01-08T10:00:00Z'))).toBe(at('2026-01-15T10:00:00Z'))
  })

  it('moves monthly windows by calendar months, clamping short months and returning to the 31st', () => {
    const end = at('2026-01-31T00:00:00Z')
    expect(currentWindowEnd('month', end, at('2026-02-10T00:00:00Z'))).toBe(at('2026-02-28T00:00:00Z'))
    expect(currentWindowEnd('month', end, at('2026-02-28T00:00:00Z'))).toBe(at('2026-03-31T00:00:00Z'))
    expect(currentWindowEnd('month', end, at('2026-04-30T00:00:00Z'))).toBe(at('2026-05-31T00:00:00Z'))
    expect(currentWindowEnd('month', end, at('2028-02-15T00:00:00Z'))).toBe(at('2028-02-29T00:00:00Z'))
  })

  it('moves yearly windows, including from 29 February', () => {
    const end = at('2024-02-29T00:00:00Z')
    expect(currentWindowEnd('year', end, at('2024-03-01T00:00:00Z'))).toBe(at('2025-02-28T00:00:00Z'))
    expect(currentWindowEnd('year', end, at('2027-12-31T00:00:00Z'))).toBe(at('2028-02-29T00:00:00Z'))
  })

  it('jumps many windows at once without drifting', () => {
    const end = at('2020-01-15T00:00:00Z')
    expect(currentWindowEnd('month', end, at('2026-06-14T23:59:59Z'))).toBe(at('2026-06-15T00:00:00Z'))
    expect(currentWindowEnd('month', end, at('2026-06-15T00:00:00Z'))).toBe(at('2026-07-15T00:00:00Z'))
  })

  it('has no end for total', () => {
    expect(currentWindowEnd('total', at('2026-01-01T00:00:00Z'), at('2030-01-01T00:00:00Z'))).toBeUndefined()
  })
})
