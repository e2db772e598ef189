import { withGetters } from '../platform/with-getters.js'
import type { Line } from './line.js'

/** A batch's JSON around its lines: `{"batch":"…","lines":[…]}` with an id of up to 40 characters. */
export const BATCH_OVERHEAD = 64

/** A batch: sent again after a failure with the same id and the same lines, so the server can recognise it. */
export interface Batch {
  readonly id: string
  readonly lines: Line[]
}

/** The JSON of a batch, from its lines' JSON fixed at sealing. */
export function batchBody(batch: Batch): string {
  let text = `{"batch":${JSON.stringify(batch.id)},"lines":[`
  for (let i = 0; i < batch.lines.length; i++) text += (i === 0 ? '' : ',') + batch.lines[i]!.json
  return `${text}]}`
}

/** The size of a batch's JSON in bytes. */
export const batchBytes = (lines: readonly Line[]) =>
  lines.reduce((sum, line) => sum + line.bytes, BATCH_OVERHEAD)

/**
 * The lines waiting to be sent, in the order they go: failed batches first, each as it was (same id, same lines),
 * then sealed lines cut into new batches by count and size. A 413 halves the lines a batch may hold and each
 * delivered batch doubles it back. Pure: no timers, no I/O, nothing sent from here.
 */
export function createBatchQueue(options: {
  readonly maxBatchLines: number
  readonly maxBatchBytes: number
  readonly nextId: () => string
}) {
  const { maxBatchLines, maxBatchBytes, nextId } = options
  /** Sealed lines waiting for a batch. */
  const waiting: Line[] = []
  /** Failed batches, sent again first, as they were. */
  const failed: Batch[] = []
  /** Lines per batch: halved by a 413, doubled back by each delivered batch. */
  let lineLimit = maxBatchLines

  /** The head failed batch, in pieces of `lineLimit` when a 413 asked for fewer lines. */
  function nextFailed(): Batch {
    const batch = failed.shift()!
    if (batch.lines.length <= lineLimit) return batch
    const piece = Math.max(1, lineLimit)
    // Split from the back so the pieces keep their order at the front of the queue.
    for (let i = batch.lines.length; i > 0; i -= piece)
      failed.unshift({ id: nextId(), lines: batch.lines.slice(Math.max(0, i - piece), i) })
    return failed.shift()!
  }

  /** The next batch: a failed one as it was, else waiting lines up to `lineLimit` and `maxBytes`. */
  function next(maxBytes: number = maxBatchBytes): Batch | undefined {
    if (failed.length > 0) return nextFailed()
    if (waiting.length === 0) return undefined
    let bytes = BATCH_OVERHEAD
    let count = 0
    while (count < waiting.length && count < lineLimit) {
      const size = waiting[count]!.bytes
      if (count > 0 && bytes + size > maxBytes) break
      bytes += size
      count++
    }
    return { id: nextId(), lines: waiting.splice(0, count) }
  }

  const queue = {
    /** A sealed line, to go in the next new batch. */
    enqueue(line: Line): void {
      waiting.push(line)
    },
    /** Whether a failed batch is next: then nothing new goes before it. */
    hasFailed: () => failed.length > 0,

    next,

    /**
     * Batches for requests that share a byte budget (a page's 64 KiB of keepalive bodies): as many as fit, in
     * order; the first that does not fit stays at the head.
     */
    within(budget: number): Batch[] {
      const batches: Batch[] = []
      for (;;) {
        const batch = next(Math.min(budget, maxBatchBytes))
        if (batch === undefined) return batches
        const size = batchBytes(batch.lines)
        if (size > budget) {
          failed.unshift(batch)
          return batches
        }
        budget -= size
        batches.push(batch)
      }
    },

    /** A batch that was not delivered goes back to the head, to be sent first, as it was. */
    putBack(batch: Batch): void {
      failed.unshift(batch)
    },
    /** The server found the batch too large: fewer lines a batch from now on, and this one first, in pieces. */
    tooLarge(batch: Batch): void {
      lineLimit = Math.max(1, Math.floor(batch.lines.length / 2))
      failed.unshift(batch)
    },
    /** A batch was delivered: batches may grow back towards `maxBatchLines`. */
    delivered(): void {
      lineLimit = Math.min(maxBatchLines, lineLimit * 2)
    },
    /** A batch from the journal, after the ones restored before it: they go in the order they were journaled. */
    restore(batch: Batch): void {
      failed.push(batch)
    },

    /** Whether open lines and waiting ones fill a batch, so it should go now. */
    full: (openLines: number, openBytes: number) =>
      openLines + waiting.length >= lineLimit || openBytes >= maxBatchBytes,
    /** What the journal keeps of the queue. */
    unsent(): { readonly failed: readonly Batch[]; readonly waiting: readonly Line[] } {
      return { failed, waiting }
    },
  }
  return withGetters(queue, {
    /** Lines in the queue (not those in flight). */
    size: (): number => {
      let count = waiting.length
      for (const batch of failed) count += batch.lines.length
      return count
    },
  })
}

export type BatchQueue = ReturnType<typeof createBatchQueue>
