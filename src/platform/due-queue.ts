import type { Platform } from './platform.js'
import { withGetters } from './with-getters.js'

/** Something with a due time and its place in the queue (-1: not queued). */
export interface Scheduled {
  due: number
  slot: number
}

/**
 * Things due at a time, run when it comes, with one platform timer armed for the earliest: the renewal of every
 * cached customer, and in a request-driven runtime every timer the client sets (`request-timers.ts`). A timer
 * per customer costs about 200 bytes each and a million timers in the runtime's list; a binary heap costs one
 * array slot each, and moving a customer when its renewal changes is O(log n) with nothing allocated.
 */
export function createDueQueue<T extends Scheduled>(platform: Platform, run: (item: T) => void) {
  const heap: T[] = []
  let timer: unknown
  let armedFor = Number.POSITIVE_INFINITY
  let closed = false

  const before = (a: T, b: T) => a.due < b.due

  function place(item: T, slot: number): void {
    heap[slot] = item
    item.slot = slot
  }

  function up(slot: number): void {
    const item = heap[slot]!
    while (slot > 0) {
      const parent = (slot - 1) >> 1
      if (!before(item, heap[parent]!)) break
      place(heap[parent]!, slot)
      slot = parent
    }
    place(item, slot)
  }

  function down(slot: number): void {
    const item = heap[slot]!
    const n = heap.length
    for (;;) {
      let child = 2 * slot + 1
      if (child >= n) break
      if (child + 1 < n && before(heap[child + 1]!, heap[child]!)) child++
      if (!before(heap[child]!, item)) break
      place(heap[child]!, slot)
      slot = child
    }
    place(item, slot)
  }

  function remove(item: T): void {
    const slot = item.slot
    if (slot < 0) return
    item.slot = -1
    const last = heap.pop()!
    if (last === item) return
    place(last, slot)
    up(slot)
    down(last.slot)
  }

  /** Keeps the one timer armed for the earliest due time; re-armed only when that changes. */
  function arm(): void {
    const first = heap[0]
    const due = first === undefined ? Number.POSITIVE_INFINITY : first.due
    if (due === armedFor) return
    platform.clearTimeout(timer)
    timer = undefined
    armedFor = due
    if (first === undefined || closed) return
    timer = platform.setTimeout(fire, due - platform.now())
  }

  function fire(): void {
    timer = undefined
    armedFor = Number.POSITIVE_INFINITY
    const now = platform.now()
    // Taken out first, then run: a run may put its item (or others) back in.
    const due: T[] = []
    while (heap.length > 0 && heap[0]!.due <= now) {
      const item = heap[0]!
      remove(item)
      due.push(item)
    }
    for (const item of due) if (!closed) run(item)
    arm()
  }

  const queue = {
    /** Queues `item` for `at` (epoch ms), or moves it there if it is queued. */
    set(item: T, at: number): void {
      if (closed) return
      item.due = at
      if (item.slot < 0) {
        heap.push(item)
        item.slot = heap.length - 1
        up(item.slot)
      } else {
        up(item.slot)
        down(item.slot)
      }
      arm()
    },
    delete(item: T): void {
      if (item.slot < 0) return
      remove(item)
      arm()
    },
    /**
     * Runs what is overdue now, as the timer would have: for runtimes whose timers do not outlive a request (a
     * Worker), where the first check after the due time is the moment. One comparison when nothing is.
     */
    catchUp(now: number): void {
      if (heap.length > 0 && heap[0]!.due <= now) fire()
    },
    /** Stops the timer; nothing runs after. */
    close(): void {
      closed = true
      platform.clearTimeout(timer)
      timer = undefined
      for (const item of heap) item.slot = -1
      heap.length = 0
    },
  }
  return withGetters(queue, {
    size: () => heap.length,
  })
}
