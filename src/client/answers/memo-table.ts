import type { Decision } from '../../core/decision.js'
import type { Entitlements } from '../../core/entitlements.js'
import type { Entry } from '../tokens/cache-entry.js'
import type { DecisionStats } from './decision-stats.js'

/**
 * One slot, reused in place: which customer's answers to which feature it holds, and until when. A context's roles
 * change an answer only through the feature's role rule (`gate`, a copy: see `gateOf`), which they pass or fail: so
 * a slot holds two answers, one for a check that passes the rule (`granted`) and one for every other (`decision`: no
 * roles, roles that fail the rule, or a feature with no rule). Each is filled by the first check that needs it.
 */
export interface Slot {
  entry: Entry | undefined
  generation: number
  feature: string
  gate: readonly string[] | undefined
  decision: Decision | undefined
  granted: Decision | undefined
  until: number
  hits: number
  grantedHits: number
}

/**
 * A slot's copy of a feature's role rule, one per rule (rules are shared by every customer on a plan), never handed
 * out. The read model's rule is a frozen array, and V8 (Node 20) reads a frozen array's elements through a generic
 * lookup, not inline: a memoized check with roles, which tests the rule on every call, spent about a tenth of its
 * time there. `passes` reads only these copies; `hasAnyRole` (decide's) also reads the frozen rules, and a loop
 * that has seen both kinds of array stays slow for both.
 */
const gates = new WeakMap<readonly string[], readonly string[]>()
function gateOf(rule: readonly string[]): readonly string[] {
  let gate = gates.get(rule)
  if (gate === undefined) {
    gate = [...rule]
    gates.set(rule, gate)
  }
  return gate
}

/** Whether the context's roles pass a slot's gate: decide's `hasAnyRole`, on the unfrozen copy (see `gateOf`). */
function passes(gate: readonly string[], held: readonly string[]): boolean {
  for (let i = 0; i < gate.length; i++) {
    const role = gate[i]
    for (let j = 0; j < held.length; j++) if (held[j] === role) return true
  }
  return false
}

/** Where a feature's answers go among a customer's slots: its place in the token's feature layout. */
function featureSlot(entry: Entry, feature: string): number {
  const layout = entry.layout
  const at = layout?.index.get(feature)
  if (at !== undefined) return at
  // A name the token does not grant (not_in_plan), or no layout: a few slots past the granted ones, by a cheap
  // hash of the name.
  const n = feature.length
  return (layout?.keys.length ?? 0) + ((n * 31 + feature.charCodeAt(0) + feature.charCodeAt(n - 1)) & 7)
}

/** Whether `slot` holds `entry`'s answers to `feature`, of its current generation. */
const holds = (slot: Slot | undefined, entry: Entry, feature: string): slot is Slot =>
  slot !== undefined &&
  slot.entry === entry &&
  slot.generation === entry.generation &&
  slot.feature === feature

/** Names `slot` as the one `entry`'s answers to `feature` are in, for the next check of it. */
function remember(entry: Entry, feature: string, slot: Slot): void {
  entry.recentFeature = feature
  entry.recentSlot = slot
}

/** Adds a slot's lazy hit counts to the totals. */
function foldSlot(slot: Slot, stats: DecisionStats): void {
  if (slot.hits > 0 && slot.decision !== undefined) stats.countTimes(slot.decision, slot.hits)
  if (slot.grantedHits > 0 && slot.granted !== undefined) stats.countTimes(slot.granted, slot.grantedHits)
  slot.hits = 0
  slot.grantedHits = 0
}

/**
 * Memoized answers to plain checks, for every customer together, in a fixed number of slots (direct-mapped, as a
 * CPU cache is, by entry and feature): memory does not grow with customers or with made-up feature names, and a service holding a
 * million customers keeps no answer objects per customer. A slot names the entry (object identity, so an answer
 * never crosses customers, nor outlives the entry it was worked out for) and the entry's generation.
 *
 * A slot whose customer left memory keeps its answer (and the entry) until it is reused: at most `size` of them.
 *
 * `roles` below is a context's roles, already known to be an array of strings (else the check is not plain).
 */
export function createMemoTable(size: number, stats: DecisionStats) {
  const mask = size - 1
  /** Where the next entry's block starts: the sum of every block given out so far. */
  let blocks = 0
  const slots: (Slot | undefined)[] = new Array(size).fill(undefined)
  // Which entry each slot holds, by id, in a typed array of 4 bytes a slot: a lookup that misses then costs a read
  // from it (more likely in the CPU cache) instead of a slot object (less likely).
  const ids = new Int32Array(size)
  const untils = new Float64Array(size)
  // An entry's id as `ids` holds it. Ids pass 2^31 in a long-running service (a token installed per renewal), and
  // an Int32Array keeps their low 32 bits: compared whole, such an id never matched, and its answers were never
  // reused. Ids that share low bits share a tag; `find` tells them apart by the entry itself.
  const tag = (entry: Entry) => entry.id | 0

  // Each entry has a block of slots for its features, given out in the order entries are made: the newest entries
  // never share a slot while their blocks fit in the table, and the oldest blocks are the first reused.
  const indexOf = (entry: Entry, feature: string) => (entry.memoBase + featureSlot(entry, feature)) & mask

  function find(entry: Entry, feature: string, index: number): Slot | undefined {
    if (ids[index] !== tag(entry)) return undefined
    const slot = slots[index]
    return holds(slot, entry, feature) ? slot : undefined
  }

  /**
   * The slot of `entry`'s answers to `feature`: the one the entry names as its most recent when it still holds
   * them (no lookup in the layout, nor in the table's arrays), else the table's, which then becomes the recent one.
   */
  function slotOf(entry: Entry, feature: string): Slot | undefined {
    if (entry.recentFeature === feature) {
      const recent = entry.recentSlot
      if (holds(recent, entry, feature)) return recent
    }
    const slot = find(entry, feature, indexOf(entry, feature))
    if (slot !== undefined) remember(entry, feature, slot)
    return slot
  }

  return {
    /**
     * Gives a new entry its block of slots, one per feature of its token (a power of two, at least 2), and
     * returns where it starts. Blocks are given out in turn, so the newest entries never share a slot while
     * their blocks fit in the table.
     */
    allocate(entitlements: Entitlements): number {
      blocks += 2 ** Math.max(1, Math.ceil(Math.log2(entitlements.features.size + 1)))
      // Each time the blocks have gone round the table, the next round's start one slot further: blocks of one round
      // still never share a slot, and a feature's answers for customers of different rounds no longer land on the
      // same few slots (one in 16 of them, when every customer has 15 features: 100 000 customers checked for one
      // feature competed for 4 096 slots of 65 536).
      return blocks + Math.floor(blocks / size)
    },
    /** The memoized answer, if one is held and still right at `now` for a check with these roles; counted lazily. */
    get(
      entry: Entry,
      feature: string,
      now: number,
      roles: readonly string[] | undefined,
    ): Decision | undefined {
      const slot = slotOf(entry, feature)
      if (slot === undefined || now >= slot.until) return undefined
      if (roles !== undefined && slot.gate !== undefined && passes(slot.gate, roles)) {
        if (slot.granted !== undefined) slot.grantedHits++
        return slot.granted
      }
      if (slot.decision !== undefined) slot.hits++
      return slot.decision
    },
    /**
     * Whether an answer worked out now may take its slot: the slot is free, its answer is past, or it is this
     * customer's. A slot another customer's answer still holds is left to it: with many customers checked at
     * random, one-off checks would otherwise keep pushing out the answers of the customers checked again and again.
     */
    wants(entry: Entry, feature: string, now: number): boolean {
      const index = indexOf(entry, feature)
      return ids[index] === 0 || ids[index] === tag(entry) || now >= untils[index]!
    },
    /** Memoizes `decision`, worked out at `now` for a check with these roles, until `until`. */
    set(
      entry: Entry,
      feature: string,
      decision: Decision,
      now: number,
      until: number,
      roles: readonly string[] | undefined,
    ): void {
      entry.memoized = true
      const index = indexOf(entry, feature)
      const rule = entry.entitlements.features.get(feature)?.roles
      const gate = rule === undefined ? undefined : gateOf(rule)
      const granted = roles !== undefined && gate !== undefined && passes(gate, roles)
      let slot = find(entry, feature, index)
      if (slot !== undefined && now < slot.until) {
        // This customer's answers to this feature, still right: the other one stays, and both last as long as the
        // sooner of the two.
        if (until < slot.until) slot.until = untils[index] = until
        foldSlot(slot, stats)
        if (granted) slot.granted = decision
        else slot.decision = decision
        remember(entry, feature, slot)
        return
      }
      ids[index] = tag(entry)
      untils[index] = until
      slot = slots[index]
      if (slot === undefined) {
        // Made with every field (one shape for all slots), then filled below as a reused slot is.
        slot = {
          entry,
          generation: 0,
          feature,
          gate,
          decision,
          granted: decision,
          until,
          hits: 0,
          grantedHits: 0,
        }
        slots[index] = slot
      } else foldSlot(slot, stats)
      slot.entry = entry
      slot.generation = entry.generation
      slot.feature = feature
      slot.gate = gate
      slot.decision = granted ? undefined : decision
      slot.granted = granted ? decision : undefined
      slot.until = until
      remember(entry, feature, slot)
    },
    /** Forgets an answer that no longer counts everything used (after record() or consume()). */
    invalidate(entry: Entry, feature: string): void {
      if (!entry.memoized) return
      const index = indexOf(entry, feature)
      const slot = find(entry, feature, index)
      if (slot === undefined) return
      foldSlot(slot, stats)
      slot.entry = undefined
      ids[index] = 0
    },
    /** Adds every slot's lazy hit counts to the totals. */
    fold(): void {
      for (const slot of slots) if (slot !== undefined) foldSlot(slot, stats)
    },
  }
}

export type MemoTable = ReturnType<typeof createMemoTable>
