/**
 * Equal values shared across customers. A service holding many customers on a few plans sees the same plan, hints,
 * role lists and flag features in every token; each is kept once instead of once per customer. Values are frozen
 * and compared by content (their JSON), so sharing one between customers tells neither anything about the other.
 *
 * Bounded: past `max` keys the table starts over. Values already handed out stay valid; only new loads stop
 * sharing with them.
 */
export function createInterner(max = 4096) {
  let table = new Map<string, unknown>()
  return function intern<T>(key: string, make: () => T): T {
    const found = table.get(key)
    if (found !== undefined) return found as T
    const value = make()
    if (table.size >= max) table = new Map()
    table.set(key, value)
    return value
  }
}

export type Interner = ReturnType<typeof createInterner>
