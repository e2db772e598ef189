import { readdirSync, readFileSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'
import { createDecisionStats } from '../../src/client/answers/decision-stats.js'
import { createMemoTable } from '../../src/client/answers/memo-table.js'
import { type HeldLeaseParts, holdLease } from '../../src/client/leases/held-lease.js'
import { createSubjectIndex } from '../../src/client/tokens/subject-index.js'
import { createTrustedClock } from '../../src/client/trusted-clock.js'
import type { FeaturePool } from '../../src/core/entitlements.js'
import { verifiedLease } from '../../src/core/lease.js'
import { createDueQueue } from '../../src/platform/due-queue.js'
import { defaultPlatform } from '../../src/platform/platform.js'
import { createMemoryStorage } from '../../src/platform/storage.js'
import { withGetters } from '../../src/platform/with-getters.js'
import { createMemoryUsageStore } from '../../src/usage/counter-store.js'

// V8 (Node 20) makes an object literal with a `get` or `set` accessor in dictionary mode, and every call of its
// methods then takes a generic lookup: the trusted clock and the token cache, called on every check, cost a memoized
// check with roles about a tenth of its time (see `src/platform/with-getters.ts`).

const SRC = resolve(__dirname, '../../src')

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory()
      ? files(join(dir, entry.name))
      : entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')
        ? [join(dir, entry.name)]
        : [],
  )
}

/** Every accessor written in an object literal of a file's `text`, as `file:line name`. */
function literalAccessors(file: string, text = readFileSync(file, 'utf8')): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true)
  const found: string[] = []
  const visit = (node: ts.Node): void => {
    if (
      (ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node)) &&
      ts.isObjectLiteralExpression(node.parent)
    ) {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart())
      found.push(`${relative(SRC, file)}:${line + 1} ${node.name.getText()}`)
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return found
}

// `%HasFastProperties` is V8's own answer; the flag only lets code compiled after it ask.
setFlagsFromString('--allow-natives-syntax')
const hasFastProperties = new Function('object', 'return %HasFastProperties(object)') as (
  object: object,
) => boolean
const haveSameMap = new Function('a', 'b', 'return %HaveSameMap(a, b)') as (a: object, b: object) => boolean

describe('objects on the hot paths stay in fast mode', () => {
  it('has no accessor in an object literal anywhere in src/ (withGetters adds them)', () => {
    expect(files(SRC).flatMap((file) => literalAccessors(file))).toEqual([])
  })

  it('finds the accessor it looks for', () => {
    const text = 'export const clock = {\n  now() { return 1 },\n  get mark() { return 2 },\n}'
    expect(literalAccessors(join(SRC, 'clock.ts'), text)).toEqual(['clock.ts:3 mark'])
    // A class's accessors are on its prototype, which stays fast: not flagged.
    expect(literalAccessors(join(SRC, 'map.ts'), 'class A { get size() { return 1 } }')).toEqual([])
  })

  it('is what withGetters returns, where a literal with a getter is not', () => {
    let mark = 1
    const made = withGetters({ rolledBack: () => false }, { mark: () => mark })
    expect(hasFastProperties(made)).toBe(true)
    mark = 2
    expect(made.mark).toBe(2)
    expect(Object.keys(made)).toEqual(['rolledBack', 'mark'])
    expect(() => {
      ;(made as { mark: number }).mark = 3
    }).toThrow(TypeError)
    // The reason for the rule: if a V8 ever makes such a literal fast, this line fails and the rule may go.
    expect(
      hasFastProperties({
        rolledBack: () => false,
        get mark() {
          return mark
        },
      }),
    ).toBe(false)
  })

  it("keeps a second and a third object fast, on the first one's map, each reading its own getters", () => {
    // An accessor of each object's own would put every object after the first in dictionary mode.
    const make = (mark: number) =>
      withGetters({ rolledBack: () => false }, { mark: () => mark, size: () => mark * 2 })
    const [first, second, third] = [make(1), make(2), make(3)]
    expect([first, second, third].map(hasFastProperties)).toEqual([true, true, true])
    expect(haveSameMap(first, second) && haveSameMap(second, third)).toBe(true)
    expect([first.mark, second.mark, third.size]).toEqual([1, 2, 6])
    expect(Object.keys(second)).toEqual(['rolledBack', 'mark', 'size'])
    expect({ ...third }).toMatchObject({ mark: 3, size: 6 })
  })

  it('holds for the parts a check and a record call, in every client of a process, not only the first', () => {
    const platform = defaultPlatform()
    const makeParts = (): Record<string, object> => {
      const stats = createDecisionStats()
      return {
        clock: createTrustedClock(platform, 1000, () => {}),
        stats,
        memos: createMemoTable(256, stats),
        subjects: createSubjectIndex({ maxSubjects: 10, now: Date.now, left: () => {} }),
        dueQueue: createDueQueue(platform, () => {}),
        storage: createMemoryStorage(),
        counters: createMemoryUsageStore(),
      }
    }
    const [first, second, third] = [makeParts(), makeParts(), makeParts()]
    const names = Object.keys(first)
    expect(names.filter((name) => !hasFastProperties(first[name]!))).toEqual([])
    expect(names.filter((name) => !hasFastProperties(second[name]!))).toEqual([])
    expect(names.filter((name) => !hasFastProperties(third[name]!))).toEqual([])
    expect(names.filter((name) => !haveSameMap(first[name]!, third[name]!))).toEqual([])
  })

  it('keeps every held lease fast, each reading its own lease and state', () => {
    // A check of a pool's feature reads the holder's handle: with each handle's own accessors, every one after the
    // first was in dictionary mode.
    const platform = defaultPlatform()
    const pool: FeaturePool = {
      ...{ name: 'editors', seats: 3, holder: 'user', ttlMs: 60_000, heartbeatMs: 20_000 },
      ...{ revivalMs: 0, graceMs: 0, borrow: undefined },
    }
    const parts = {
      ...{ platform, ended: () => {}, keep: () => {}, changed: () => {}, background: () => {} },
    } as unknown as HeldLeaseParts
    const handles = ['a', 'b', 'c'].map((holder) => {
      const now = Date.now()
      const lease = verifiedLease({
        ...{ id: `lease-${holder}`, pool: 'editors', subject: 'acme', holder, issuedAt: now },
        ...{ expiresAt: now + 60_000, validUntil: now + 60_000, borrowed: false, token: 'x.y.z' },
      })
      return holdLease(lease, { heartbeatMs: undefined, expiresInMs: 60_000 }, pool, parts)
    })
    try {
      expect(handles.map(hasFastProperties)).toEqual([true, true, true])
      expect(haveSameMap(handles[0]!, handles[2]!)).toBe(true)
      expect(handles.map((handle) => [handle.id, handle.state, handle.lease.holder])).toEqual([
        ['lease-a', 'held', 'a'],
        ['lease-b', 'held', 'b'],
        ['lease-c', 'held', 'c'],
      ])
    } finally {
      for (const handle of handles) handle.stop()
    }
  })
})
