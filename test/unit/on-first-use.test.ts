import { describe, expect, it } from 'vitest'
import { createLazyEventStream } from '../../src/client/lazy-event-stream.js'
import { createLazyLeases } from '../../src/client/leases/lazy-leases.js'
import type { LeaseKeeperParts } from '../../src/client/leases/lease-keeper.js'
import { onFirstUse } from '../../src/client/on-first-use.js'
import { EntitlementError } from '../../src/core/errors.js'
import { defaultPlatform } from '../../src/platform/platform.js'
import type { LicenseServerClient } from '../../src/transport/license-server-client.js'

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

describe('the event stream made when the client starts it', () => {
  /** A platform whose timers are only listed, and a stream module whose stream says what was asked of it. */
  function setup(loads: Array<'fails' | 'loads'>) {
    const timers: Array<{ fn: () => void; ms: number }> = []
    const platform = {
      ...defaultPlatform(),
      setTimeout: (fn: () => void, ms: number) => timers.push({ fn, ms }),
      clearTimeout: (id: unknown) => {
        if (typeof id === 'number') timers[id - 1] = { fn: () => {}, ms: -1 }
      },
    }
    const asked: string[] = []
    const reported: unknown[] = []
    const work: Promise<unknown>[] = []
    let attempts = 0
    const code = async () => {
      if (loads[attempts++] === 'fails') throw new TypeError('Failed to fetch dynamically imported module')
      return {
        createEventStream: (options: { retry: { failures: number } }) => {
          asked.push(`made, ${options.retry.failures} failures`)
          return {
            start: () => asked.push('start'),
            catchUp: (now: number) => asked.push(`catchUp ${now}`),
            stop: () => asked.push('stop'),
          }
        },
      } as unknown as typeof import('../../src/transport/event-stream.js')
    }
    const stream = createLazyEventStream(
      {
        platform,
        server: {} as LicenseServerClient,
        backoff: { initialMs: 1000, maxMs: 30_000 },
        pollIntervalMs: 30_000,
        maxConnectionMs: Number.POSITIVE_INFINITY,
        onEntitlements: () => {},
        onRevocations: () => {},
        report: (error) => reported.push(error),
        background: (promise) => work.push(promise),
      },
      code,
    )
    const settle = () => Promise.all(work)
    return { stream, timers, asked, reported, settle, attempts: () => attempts }
  }

  it('loads its code at start, not before, and hands checks to the stream once it is made', async () => {
    const { stream, asked, settle, attempts } = setup(['loads'])
    stream.catchUp(1)
    expect(attempts()).toBe(0)
    stream.start()
    stream.catchUp(2)
    await settle()
    stream.catchUp(3)
    stream.stop()
    expect(asked).toEqual(['made, 0 failures', 'start', 'catchUp 3', 'stop'])
  })

  it('reports code that could not be loaded, and loads it again pollIntervalMs later', async () => {
    const { stream, timers, asked, reported, settle, attempts } = setup(['fails', 'loads'])
    stream.start()
    await settle()
    expect(reported).toHaveLength(1)
    expect(reported[0]).toMatchObject({ code: 'server_unavailable' })
    expect((reported[0] as Error).message).toMatch(/event stream code could not be loaded/)
    expect(asked).toEqual([])
    expect(timers.map((timer) => timer.ms)).toEqual([30_000])
    timers[0]!.fn()
    await settle()
    expect(attempts()).toBe(2)
    expect(asked).toEqual(['made, 0 failures', 'start'])
  })

  it('starts nothing when stopped while its code loads, and loads nothing more after a stop', async () => {
    const loading = setup(['loads'])
    loading.stream.start()
    loading.stream.stop()
    await loading.settle()
    expect(loading.asked).toEqual(['made, 0 failures'])

    const failing = setup(['fails'])
    failing.stream.start()
    failing.stream.stop()
    await failing.settle()
    expect(failing.reported).toEqual([])
    expect(failing.timers).toEqual([])
  })
})
