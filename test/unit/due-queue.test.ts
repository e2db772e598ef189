import { describe, expect, it } from 'vitest'
import { createDueQueue, type Scheduled } from '../../src/platform/due-queue.js'
import type { Platform } from '../../src/platform/platform.js'

/** A platform that counts live timers and fires them when told. */
function timers() {
  let now = 0
  const live = new Map<number, { at: number; fn: () => void }>()
  let next = 1
  const platform = {
    now: () => now,
    setTimeout(fn: () => void, ms: number) {
      live.set(next, { at: now + Math.max(0, ms), fn })
      return next++
    },
    clearTimeout(id: unknown) {
      live.delete(id as number)
    },
  } as unknown as Platform
  return {
    platform,
    live,
    /** Moves to `to`, firing due timers in order. */
    advanceTo(to: number) {
      for (;;) {
        const due = [...live].filter(([, t]) => t.at <= to).sort((a, b) => a[1].at - b[1].at)[0]
        if (due === undefined) break
        live.delete(due[0])
        now = due[1].at
        due[1].fn()
      }
      now = to
    },
  }
}

interface Item extends Scheduled {
  name: number
}
const item = (name: number): Item => ({ name, due: 0, slot: -1 })

describe('renewals: one timer for every customer', () => {
  it('runs each item once, at its time, in order, through random sets, moves and deletes', () => {
    let seed = 42
    const random = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0
      return seed / 4_294_967_296
    }
    for (let round = 0; round < 20; round++) {
      const clock = timers()
      const ran: Array<[number, number]> = []
      const renewals = createDueQueue<Item>(clock.platform, (it) => ran.push([it.name, clock.platform.now()]))
      const items = Array.from({ length: 300 }, (_, i) => item(i))
      const expected = new Map<number, number>()
      for (let op = 0; op < 2000; op++) {
        const it = items[Math.floor(random() * items.length)]!
        if (random() < 0.15) {
          renewals.delete(it)
          expected.delete(it.name)
        } else {
          const at = Math.floor(random() * 100_000)
          renewals.set(it, at)
          expected.set(it.name, at)
        }
        // Never more than one timer, whatever is queued.
        expect(clock.live.size).toBe(expected.size > 0 ? 1 : 0)
      }
      expect(renewals.size).toBe(expected.size)
      clock.advanceTo(200_000)
      const want = [...expected].sort((a, b) => a[1] - b[1] || 0)
      expect(ran.map(([name]) => name).sort((a, b) => a - b)).toEqual(
        want.map(([n]) => n).sort((a, b) => a - b),
      )
      for (const [name, at] of ran) expect(at).toBe(expected.get(name))
      for (let i = 1; i < ran.length; i++) expect(ran[i]![1]).toBeGreaterThanOrEqual(ran[i - 1]![1])
      expect(clock.live.size).toBe(0)
    }
  })

  it('lets a run queue its item again, and stops for good on close', () => {
    const clock = timers()
    const a = item(1)
    let runs = 0
    const renewals = createDueQueue<Item>(clock.platform, (it) => {
      runs++
      renewals.set(it, clock.platform.now() + 1000)
    })
    renewals.set(a, 1000)
    clock.advanceTo(5500)
    expect(runs).toBe(5)
    renewals.close()
    expect(clock.live.size).toBe(0)
    renewals.set(a, 6000)
    renewals.delete(a)
    clock.advanceTo(10_000)
    expect(runs).toBe(5)
  })
})
