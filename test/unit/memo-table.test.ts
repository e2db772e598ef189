import { describe, expect, it } from 'vitest'
import { createDecisionStats } from '../../src/client/answers/decision-stats.js'
import { createMemoTable } from '../../src/client/answers/memo-table.js'
import { memoSlotsFor } from '../../src/client/assemble.js'
import type { Entry } from '../../src/client/tokens/cache-entry.js'
import type { Decision } from '../../src/core/decision.js'
import type { Entitlements } from '../../src/core/entitlements.js'

// The memo table names each slot's entry by id in an Int32Array. A long-running service installs a token for
// every renewal (a million customers on ten-minute tokens: about 2 000 a second, 2^31 in twelve days), so ids
// pass what an Int32Array holds; the table must keep answering, and never across entries that share a tag.
const entry = (id: number, memoBase = 0) =>
  ({
    id,
    memoBase,
    generation: 0,
    memoized: false,
    recentFeature: undefined,
    recentSlot: undefined,
    layout: undefined,
    entitlements: { features: new Map([['reports', { roles: ['admin', 'analyst'] }]]) },
  }) as unknown as Entry
const decision = (feature: string, allowed: boolean) => ({ feature, allowed }) as unknown as Decision

describe('the memo table', () => {
  it('answers for an entry whose id is past what an Int32Array holds', () => {
    const table = createMemoTable(256, createDecisionStats())
    for (const id of [2 ** 31 - 1, 2 ** 31, 2 ** 31 + 5, 2 ** 32, 2 ** 32 + 7, 2 ** 40 + 3]) {
      const holder = entry(id)
      const answer = decision('export', true)
      expect(table.wants(holder, 'export', 0)).toBe(true)
      table.set(holder, 'export', answer, 0, 1000, undefined)
      expect({ id, answer: table.get(holder, 'export', 10, undefined) }).toEqual({ id, answer })
      expect(table.wants(holder, 'export', 10)).toBe(true)
      table.invalidate(holder, 'export')
      expect(table.get(holder, 'export', 10, undefined)).toBeUndefined()
    }
  })

  it('never gives one entry the answer of another whose id has the same 32 low bits', () => {
    const table = createMemoTable(256, createDecisionStats())
    const first = entry(5)
    const wrapped = entry(2 ** 32 + 5)
    table.set(first, 'export', decision('export', true), 0, 1000, undefined)
    expect(table.get(wrapped, 'export', 10, undefined)).toBeUndefined()
    table.set(wrapped, 'export', decision('export', false), 0, 1000, undefined)
    expect(table.get(first, 'export', 10, undefined)).toBeUndefined()
    expect(table.get(wrapped, 'export', 10, undefined)?.allowed).toBe(false)
  })

  it('holds one answer for checks that pass a role rule and one for every other, and counts the hits of each', () => {
    const stats = createDecisionStats()
    const table = createMemoTable(256, stats)
    const holder = entry(1)
    const missing = { ...decision('reports', false), reason: 'role_missing' } as Decision
    const granted = { ...decision('reports', true), reason: 'granted' } as Decision
    table.set(holder, 'reports', missing, 0, 1000, undefined)
    // Roles that pass the rule were never decided: no answer, rather than the plain one.
    expect(table.get(holder, 'reports', 10, ['analyst'])).toBeUndefined()
    table.set(holder, 'reports', granted, 10, 900, ['analyst'])
    expect(table.get(holder, 'reports', 20, ['admin'])).toBe(granted)
    expect(table.get(holder, 'reports', 20, ['viewer'])).toBe(missing)
    expect(table.get(holder, 'reports', 20, [])).toBe(missing)
    expect(table.get(holder, 'reports', 20, undefined)).toBe(missing)
    // Both last until the sooner of the two.
    expect(table.get(holder, 'reports', 900, ['admin'])).toBeUndefined()
    expect(table.get(holder, 'reports', 900, undefined)).toBeUndefined()
    table.fold()
    expect(stats.snapshot().reports).toEqual({
      allowed: 1,
      denied: 3,
      reasons: { granted: 1, role_missing: 3 },
    })
  })

  it('gives a feature with no role rule the same answer whatever the roles', () => {
    const table = createMemoTable(256, createDecisionStats())
    const holder = entry(2)
    const answer = decision('export', true)
    table.set(holder, 'export', answer, 0, 1000, ['viewer'])
    expect(table.get(holder, 'export', 10, undefined)).toBe(answer)
    expect(table.get(holder, 'export', 10, ['admin'])).toBe(answer)
  })

  it('spreads one feature of many customers over the whole table once their blocks have gone round it', () => {
    const table = createMemoTable(256, createDecisionStats())
    const names = Array.from({ length: 15 }, (_, i) => `f${i}`)
    const features = new Map(names.map((name) => [name, {}]))
    const layout = { keys: names, index: new Map(names.map((name, i) => [name, i])) }
    // 240 customers of 15 features: blocks of 16 slots, 15 rounds of a table of 256.
    const customers = Array.from(
      { length: 240 },
      (_, i) =>
        ({
          id: i + 1,
          memoBase: table.allocate({ features } as unknown as Entitlements),
          generation: 0,
          memoized: false,
          recentFeature: undefined,
          recentSlot: undefined,
          layout,
          entitlements: { features },
        }) as unknown as Entry,
    )
    for (const customer of customers) table.set(customer, 'f0', decision('f0', true), 0, 1000, undefined)
    // Every customer's answer to f0 found a slot of its own: before, all of them went to the 16 slots at the start
    // of a block, and 16 answers were all the table held.
    const held = customers.filter((customer) => table.get(customer, 'f0', 10, undefined) !== undefined)
    expect(held).toHaveLength(240)
    // Within one round, customers' blocks still never share a slot.
    const round = customers.slice(0, 16)
    for (const customer of round)
      for (const name of names) table.set(customer, name, decision(name, true), 0, 1000, undefined)
    for (const customer of round)
      for (const name of names) expect(table.get(customer, name, 10, undefined)?.feature).toBe(name)
  })

  it('is sized by the customers a client may hold: 16 slots each up to 65 536, then 2 each up to 2^20', () => {
    expect(memoSlotsFor(1)).toBe(256)
    expect(memoSlotsFor(100)).toBe(2048)
    // The default client (10 000 customers) keeps the table it had.
    expect(memoSlotsFor(10_000)).toBe(65_536)
    // At 100 000 customers a table of 65 536 left a fifth of the checks of one feature to be decided again.
    expect(memoSlotsFor(100_000)).toBe(262_144)
    expect(memoSlotsFor(1_000_000)).toBe(2 ** 20)
    expect(memoSlotsFor(50_000_000)).toBe(2 ** 20)
    let last = 0
    for (let customers = 1; customers < 4_000_000; customers = Math.ceil(customers * 1.3)) {
      const slots = memoSlotsFor(customers)
      expect(Number.isInteger(Math.log2(slots))).toBe(true)
      expect(slots).toBeGreaterThanOrEqual(last)
      expect(slots).toBeGreaterThanOrEqual(Math.min(2 ** 20, customers * 2))
      last = slots
    }
  })
})

// An entry names the slot of its most recent answer, to reach it without the table's lookups. Each way that slot
// can stop holding that answer must send the next check back to the table, never to the answer left there.
describe("the memo table: an entry's most recent slot", () => {
  // Two customers whose blocks start on the same slot of a table of 256: their answers to one feature compete.
  const table = () => createMemoTable(256, createDecisionStats())
  const rivals = () => [entry(1, 0), entry(2, 256)] as const

  it('is not followed once another customer has taken the slot', () => {
    const memos = table()
    const [first, second] = rivals()
    memos.set(first, 'export', decision('export', true), 0, 1000, undefined)
    expect(memos.get(first, 'export', 10, undefined)?.allowed).toBe(true)
    // The first answer is past at 1000: the second customer's answer takes the slot.
    expect(memos.wants(second, 'export', 1000)).toBe(true)
    memos.set(second, 'export', decision('export', false), 1000, 2000, undefined)
    expect(memos.get(first, 'export', 1010, undefined)).toBeUndefined()
    expect(memos.get(second, 'export', 1010, undefined)?.allowed).toBe(false)
    // And back again: the first customer's new answer, never the second's.
    memos.set(first, 'export', decision('export', true), 2000, 3000, undefined)
    expect(memos.get(first, 'export', 2010, undefined)?.allowed).toBe(true)
    expect(memos.get(second, 'export', 2010, undefined)).toBeUndefined()
  })

  it('is not followed once its answer is forgotten, or its entry has moved on a generation', () => {
    const memos = table()
    const holder = entry(3)
    memos.set(holder, 'export', decision('export', true), 0, 1000, undefined)
    expect(memos.get(holder, 'export', 10, undefined)).toBeDefined()
    memos.invalidate(holder, 'export')
    expect(memos.get(holder, 'export', 10, undefined)).toBeUndefined()
    memos.set(holder, 'export', decision('export', true), 20, 1000, undefined)
    expect(memos.get(holder, 'export', 30, undefined)).toBeDefined()
    ;(holder as { generation: number }).generation++
    expect(memos.get(holder, 'export', 40, undefined)).toBeUndefined()
  })

  it('gives each feature its own answer when checks go back and forth between features', () => {
    const memos = table()
    const names = ['export', 'reports', 'sso']
    const layout = { keys: names, index: new Map(names.map((name, i) => [name, i])) }
    const holder = { ...entry(4), layout } as Entry
    for (const name of names) memos.set(holder, name, decision(name, name !== 'sso'), 0, 1000, undefined)
    for (let round = 0; round < 3; round++)
      for (const name of [...names, 'sso', 'export', 'export', 'reports'])
        expect(memos.get(holder, name, 10 + round, undefined)?.feature).toBe(name)
    // A name the token does not grant still has an answer of its own, past the granted ones.
    memos.set(holder, 'unknown', decision('unknown', false), 0, 1000, undefined)
    expect(memos.get(holder, 'unknown', 20, undefined)?.feature).toBe('unknown')
    expect(memos.get(holder, 'export', 20, undefined)?.feature).toBe('export')
  })
})
