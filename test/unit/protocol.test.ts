import { describe, expect, it } from 'vitest'
import * as z from 'zod'
import {
  addMonths,
  formatUsageLineProblem,
  USAGE_LIMITS,
  usageBatchSchema,
  usageLineProblem,
  usageLineSchemaProblem,
} from '../../src/protocol/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { seeded } from '../helpers.js'

/** Values at and around each limit, and of every wrong type, for each field of a line. */
function fieldValues(limit: typeof USAGE_LIMITS) {
  const string = (n: number, c = 'a') => c.repeat(n)
  const wrongTypes = [null, true, 1, 'x', [], {}, [1]]
  return {
    id: ['a', string(limit.lineId), string(limit.lineId + 1), '', 'a b', 'a/b', 'é', ...wrongTypes],
    subject: [
      undefined,
      'acme',
      string(limit.subject),
      string(limit.subject + 1),
      'alice@example.com',
      '',
      ...wrongTypes,
    ],
    metric: ['m', string(limit.metric), string(limit.metric + 1), '', 'any thing @/é', ...wrongTypes],
    amount: [
      0,
      1,
      0.5,
      limit.amount,
      limit.amount + 1,
      -1,
      -0,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      '1',
      ...wrongTypes,
    ],
    start: [0, 1, 1.5, limit.time, limit.time + 1, -1, Number.MAX_SAFE_INTEGER + 2, '1', ...wrongTypes],
    end: [0, 2, 2.5, limit.time, limit.time + 1, -1, '2', ...wrongTypes],
    resource: [
      undefined,
      'workspace:ws_9',
      'repository:a:b',
      `${string(limit.resourcePart)}:${string(limit.resourcePart)}`,
      `${string(limit.resourcePart + 1)}:x`,
      `x:${string(limit.resourcePart + 1)}`,
      'workspace',
      ':ws',
      'ws:',
      'w\u0000s:1',
      '',
      ...wrongTypes,
    ],
    dimensions: [
      undefined,
      {},
      { region: 'eu' },
      { region: string(limit.dimensionValue) },
      { region: string(limit.dimensionValue + 1) },
      { [string(limit.dimensionName)]: 'v' },
      { [string(limit.dimensionName + 1)]: 'v' },
      { '': 'v' },
      { region: 1 },
      Object.fromEntries(Array.from({ length: limit.dimensions }, (_, i) => [`d${i}`, 'v'])),
      Object.fromEntries(Array.from({ length: limit.dimensions + 1 }, (_, i) => [`d${i}`, 'v'])),
      ...wrongTypes,
    ],
    properties: [
      undefined,
      {},
      { note: 'x' },
      { note: string(limit.propertiesBytes - 11) },
      { note: string(limit.propertiesBytes) },
      { nested: { deep: [1, 2, 3] } },
      ...wrongTypes,
    ],
  }
}

describe('the usage line rules: one verdict, with or without zod', () => {
  it('the lean checker and the zod schema agree on verdict, path and reason for 20 000 generated lines', () => {
    const random = seeded(42)
    const values = fieldValues(USAGE_LIMITS)
    const fields = Object.keys(values) as Array<keyof typeof values>
    const valid = { id: 'l-1', subject: 'acme', metric: 'api-calls', amount: 3, start: 10, end: 20 }
    let refused = 0
    for (let i = 0; i < 20_000; i++) {
      const line: Record<string, unknown> = { ...valid }
      // Most lines break one field, some several, some none.
      const changes = Math.floor(random() * 3)
      for (let c = 0; c < changes; c++) {
        const field = fields[Math.floor(random() * fields.length)]!
        const options = values[field] as unknown[]
        const value = options[Math.floor(random() * options.length)]
        if (value === undefined) delete line[field]
        else line[field] = value
      }
      const lean = usageLineProblem(line)
      expect(lean, JSON.stringify(line).slice(0, 300)).toEqual(usageLineSchemaProblem(line))
      if (lean) refused++
    }
    // Both verdicts happen often: the test would notice a checker that refuses (or accepts) everything.
    expect(refused).toBeGreaterThan(5000)
    expect(refused).toBeLessThan(15_000)
    for (const notALine of [null, 'line', 1, [], [{ id: 'a' }]])
      expect(usageLineProblem(notALine)).toEqual(usageLineSchemaProblem(notALine))
  })

  it('says what is wrong in words a person can act on', () => {
    const line = { id: 'l', metric: 'api-calls', amount: 2e15, start: 1, end: 1 }
    expect(formatUsageLineProblem(usageLineProblem(line)!)).toBe(
      'amount: a number from 0 to 1000000000000000',
    )
    expect(formatUsageLineProblem(usageLineProblem({ ...line, amount: 1, end: 0 })!)).toBe(
      'end: end is before start',
    )
  })

  it('publishes its limits in the JSON Schema the server documents', () => {
    const schema = z.toJSONSchema(usageBatchSchema) as unknown as {
      properties: {
        lines: {
          maxItems: number
          items: { properties: Record<string, { maximum?: number; maxLength?: number }> }
        }
      }
    }
    expect(schema.properties.lines.maxItems).toBe(USAGE_LIMITS.batchLines)
    expect(schema.properties.lines.items.properties.amount!.maximum).toBe(USAGE_LIMITS.amount)
    expect(schema.properties.lines.items.properties.metric!.maxLength).toBe(USAGE_LIMITS.metric)
  })
})

describe('addMonths', () => {
  it('counts each month from the anchor, the day clamped: Jan 31 + 1 = Feb 28, + 2 = Mar 31', () => {
    const jan31 = Date.UTC(2026, 0, 31, 9, 30)
    expect(new Date(addMonths(jan31, 1)).toISOString()).toBe('2026-02-28T09:30:00.000Z')
    expect(new Date(addMonths(jan31, 2)).toISOString()).toBe('2026-03-31T09:30:00.000Z')
    expect(new Date(addMonths(Date.UTC(2024, 1, 29), 12)).toISOString()).toBe('2025-02-28T00:00:00.000Z')
  })
})

describe('signEntitlementToken', () => {
  it('names each claim that would not verify and what is wrong with it, before signing anything', async () => {
    const issuer = await createTestIssuer()
    const attempt = issuer.issue({
      features: {
        // A cap with no period and no usage, a name too long, a limit that is not a count.
        'api-calls': { cap: { limit: 5 } } as never,
        ['f'.repeat(129)]: true,
        seats: { limit: -1 },
      },
    })
    await expect(attempt).rejects.toThrow(TypeError)
    const message = await attempt.catch((error: Error) => error.message)
    expect(message).toContain('ent.features.api-calls.cap.period: expected "hour" or "day"')
    expect(message).toContain('ent.features.api-calls.cap.used: expected number')
    expect(message).toContain('ent.features.seats.limit: at least 0')
    expect(message).toContain(`ent.features.${'f'.repeat(129)}: at most 128 characters`)
  })
})

describe('docs/metering.md', () => {
  it('states every limit of the protocol, with the value USAGE_LIMITS has', async () => {
    const { readFile } = await import('node:fs/promises')
    const all = await readFile('docs/metering.md', 'utf8')
    const from = all.indexOf('### The rules a line follows')
    const text = all.slice(from, all.indexOf('\n## ', from))
    const rows = new Map<string, number>()
    for (const match of text.matchAll(/^\| `(\w+)`\s*\| ([\d.e]+)\s*\|/gm))
      rows.set(match[1]!, Number(match[2]))
    expect(Object.fromEntries(rows)).toEqual({ ...USAGE_LIMITS })
  })
})
