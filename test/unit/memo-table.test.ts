import { describe, expect, it } from 'vitest'
import { createDecisionStats } from '../../src/client/answers/decision-stats.js'
import { createMemoTable } from '../../src/client/answers/memo-table.js'
import type { Entry } from '../../src/client/tokens/cache-entry.js'
import type { Decision } from '../../src/core/decision.js'

// The memo table names each slot's entry by id in an Int32Array. A long-running service installs a token for
// every renewal (a million customers on ten-minute tokens: about 2 000 a second, 2^31 in twelve days), so ids
// pass what an Int32Array holds; the table must keep answering, and never across entries that share a tag.
const entry = (id: number, memoBase = 0) =>
  ({ id, memoBase, generation: 0, memoized: false, layout: undefined }) as unknown as Entry
const decision = (feature: string, allowed: boolean) => ({ feature, allowed }) as unknown as Decision

describe('the memo table', () => {
  it('answers for an entry whose id is past what an Int32Array holds', () => {
    const table = createMemoTable(256, createDecisionStats())
    for (const id of [2 ** 31 - 1, 2 ** 31, 2 ** 31 + 5, 2 ** 32, 2 ** 32 + 7, 2 ** 40 + 3]) {
      const holder = entry(id)
      const answer = decision('export', true)
      expect(table.wants(holder, 'export', 0)).toBe(true)
      table.set(holder, 'export', answer, 1000)
      expect({ id, answer: table.get(holder, 'export', 10) }).toEqual({ id, answer })
      expect(table.wants(holder, 'export', 10)).toBe(true)
      table.invalidate(holder, 'export')
      expect(table.get(holder, 'export', 10)).toBeUndefined()
    }
  })

  it('never gives one entry the answer of another whose id has the same 32 low bits', () => {
    const table = createMemoTable(256, createDecisionStats())
    const first = entry(5)
    const wrapped = entry(2 ** 32 + 5)
    table.set(first, 'export', decision('export', true), 1000)
    expect(table.get(wrapped, 'export', 10)).toBeUndefined()
    table.set(wrapped, 'export', decision('export', false), 1000)
    expect(table.get(first, 'export', 10)).toBeUndefined()
    expect(table.get(wrapped, 'export', 10)?.allowed).toBe(false)
  })
})
