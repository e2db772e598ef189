import { describe, expect, it } from 'vitest'
import { BATCH_OVERHEAD, batchBody, batchBytes, createBatchQueue } from '../../src/usage/batch-queue.js'
import { createLine, type Line, sealLine } from '../../src/usage/line.js'

/** A sealed line of `bytes` bytes on the wire (roughly: the id pads it). */
function line(n: number, pad = 0): Line {
  const made = createLine(
    `l${n}${'x'.repeat(pad)}`,
    'acme',
    'api-calls',
    1,
    1_000,
    2_000,
    1,
    undefined,
    undefined,
  )
  sealLine(made, 'acme')
  return made
}

function queueOf(options: { maxBatchLines?: number; maxBatchBytes?: number } = {}) {
  let id = 0
  return createBatchQueue({
    maxBatchLines: options.maxBatchLines ?? 1000,
    maxBatchBytes: options.maxBatchBytes ?? 262_144,
    nextId: () => `b${++id}`,
  })
}

const ids = (lines: readonly Line[]) => lines.map((l) => l.id)

describe('the batch queue', () => {
  it('cuts waiting lines into batches by count, in order, with new ids', () => {
    const queue = queueOf({ maxBatchLines: 2 })
    for (let i = 1; i <= 5; i++) queue.enqueue(line(i))
    expect(queue.size).toBe(5)
    const batches = [queue.next(), queue.next(), queue.next(), queue.next()]
    expect(batches.map((batch) => batch && [batch.id, ids(batch.lines)])).toEqual([
      ['b1', ['l1', 'l2']],
      ['b2', ['l3', 'l4']],
      ['b3', ['l5']],
      undefined,
    ])
  })

  it('cuts by size, but never leaves a line too big for a batch behind: it goes alone', () => {
    const small = line(1)
    const big = line(2, 400)
    const queue = queueOf({ maxBatchBytes: BATCH_OVERHEAD + small.bytes + 100 })
    queue.enqueue(small)
    queue.enqueue(big)
    queue.enqueue(line(3))
    expect(ids(queue.next()!.lines)).toEqual(['l1'])
    expect(ids(queue.next()!.lines)).toEqual([big.id])
    expect(ids(queue.next()!.lines)).toEqual(['l3'])
  })

  it('sends a batch that was not delivered again first, as it was: same id, same lines', () => {
    const queue = queueOf({ maxBatchLines: 2 })
    for (let i = 1; i <= 4; i++) queue.enqueue(line(i))
    const first = queue.next()!
    queue.putBack(first)
    expect(queue.hasFailed()).toBe(true)
    const again = queue.next()!
    expect(again).toBe(first)
    expect(ids(queue.next()!.lines)).toEqual(['l3', 'l4'])
  })

  it('splits a batch the server found too large in halves, keeping order, and grows back after deliveries', () => {
    const queue = queueOf({ maxBatchLines: 8 })
    for (let i = 1; i <= 8; i++) queue.enqueue(line(i))
    const batch = queue.next()!
    expect(batch.lines).toHaveLength(8)
    queue.tooLarge(batch)
    const halves = [queue.next()!, queue.next()!]
    expect(halves.map((half) => ids(half.lines))).toEqual([
      ['l1', 'l2', 'l3', 'l4'],
      ['l5', 'l6', 'l7', 'l8'],
    ])
    // Each piece of a split is a new batch: the server never stored the whole, so a new id cannot count twice.
    expect(halves.map((half) => half.id)).not.toContain(batch.id)
    // Still 4 a batch until deliveries double it back: 4 -> 8.
    for (let i = 9; i <= 20; i++) queue.enqueue(line(i))
    expect(queue.next()!.lines).toHaveLength(4)
    queue.delivered()
    expect(queue.next()!.lines).toHaveLength(8)
  })

  it('a line that is too large alone is split no further: one line a batch is the floor', () => {
    const queue = queueOf({ maxBatchLines: 4 })
    queue.enqueue(line(1))
    const batch = queue.next()!
    queue.tooLarge(batch)
    expect(queue.next()).toBe(batch)
  })

  it('fits keepalive batches in a shared byte budget, leaving the first that does not fit at the head', () => {
    const queue = queueOf({ maxBatchLines: 2 })
    for (let i = 1; i <= 6; i++) queue.enqueue(line(i))
    const two = BATCH_OVERHEAD + line(1).bytes * 2
    const taken = queue.within(two * 2 + 10)
    expect(taken.map((batch) => ids(batch.lines))).toEqual([
      ['l1', 'l2'],
      ['l3', 'l4'],
    ])
    expect(batchBytes(taken[0]!.lines)).toBeLessThanOrEqual(two)
    // The next batch was cut to what was left of the budget (one line), did not fit, and waits at the head.
    expect(queue.hasFailed()).toBe(true)
    expect(ids(queue.next()!.lines)).toEqual(['l5'])
    expect(ids(queue.next()!.lines)).toEqual(['l6'])
  })

  it('restores journaled batches in the order they were journaled, before any new line', () => {
    const queue = queueOf()
    queue.restore({ id: 'j1', lines: [line(1)] })
    queue.restore({ id: 'j2', lines: [line(2)] })
    queue.enqueue(line(3))
    expect([queue.next()!.id, queue.next()!.id, ids(queue.next()!.lines)]).toEqual(['j1', 'j2', ['l3']])
  })

  it('says when open and waiting lines fill a batch', () => {
    const queue = queueOf({ maxBatchLines: 3, maxBatchBytes: 10_000 })
    queue.enqueue(line(1))
    expect(queue.full(1, 100)).toBe(false)
    expect(queue.full(2, 100)).toBe(true)
    expect(queue.full(0, 10_000)).toBe(true)
  })

  it('writes a batch body the server reads back to the same lines', () => {
    const lines = [line(1), line(2)]
    const body = JSON.parse(batchBody({ id: 'b9', lines }))
    expect(body).toEqual({ batch: 'b9', lines: lines.map((l) => JSON.parse(l.json)) })
  })
})
