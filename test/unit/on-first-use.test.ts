import { describe, expect, it } from 'vitest'
import { createLazyLeases } from '../../src/client/leases/lazy-leases.js'
import type { LeaseKeeperParts } from '../../src/client/leases/lease-keeper.js'
import { onFirstUse } from '../../src/client/on-first-use.js'
import { EntitlementError } from '../../src/core/errors.js'

// Code loaded on first use is a chunk a page fetches then: a fetch that fails (the page went offline) must be a
// typed error the app can branch on, and must not stick, so the next use fetches again.

describe('a part made on first use', () => {
  it('is made once, by the first use, and shared by uses that overlap', async () => {
    let made = 0
    const part = onFirstUse('test', async () => ({ n: ++made }))
    expect(part.current).toBeUndefined()
    const [a, b] = await Promise.all([part.load(), part.load()])
    expect(a).toBe(b)
    expect(await part.load()).toBe(a)
    expect(part.current).toBe(a)
    expect(made).toBe(1)
  })

  it('turns code that could not be loaded into server_unavailable, and loads it at the next use', async () => {
    let attempts = 0
    const part = onFirstUse('test', async () => {
      if (++attempts === 1) throw new TypeError('Failed to fetch dynamically imported module')
      return { ok: true }
    })
    const error = await part.load().catch((caught: unknown) => caught)
    expect(error).toBeInstanceOf(EntitlementError)
    expect(error).toMatchObject({ code: 'server_unavailable' })
    expect((error as Error).message).toMatch(/the test code could not be loaded: TypeError: Failed to fetch/)
    await part.settled()
    expect(part.current).toBeUndefined()
    expect(await part.load()).toEqual({ ok: true })
    expect(attempts).toBe(2)
  })
})

describe('leases made on the first lease()', () => {
  const parts = {} as LeaseKeeperParts

  it('answers lease() unavailable, not a throw, when the lease code cannot be loaded; holds nothing', async () => {
    const leases = createLazyLeases(parts, () => Promise.reject(new TypeError('Failed to fetch')))
    const result = await leases.acquire('seats', { subject: 'acme', holder: 'host-a' })
    expect(result).toMatchObject({ acquired: false, pool: 'seats', reason: 'unavailable' })
    expect(!result.acquired && result.error?.code).toBe('server_unavailable')
    expect(leases.find('acme', 'seats', 'host-a')).toBeUndefined()
    expect(leases.count()).toBe(0)
    await expect(leases.releaseAll()).resolves.toBeUndefined()
  })

  it('loads nothing for checks and close() before the first lease()', async () => {
    let loads = 0
    const leases = createLazyLeases(parts, () => {
      loads++
      return import('../../src/client/leases/lease-keeper.js')
    })
    expect(leases.find('acme', 'seats', undefined)).toBeUndefined()
    await leases.releaseAll()
    expect(leases.count()).toBe(0)
    expect(loads).toBe(0)
  })
})
