import type { CapUsage } from './entitlements.js'

/**
 * What a cap's usage snapshot counts in the window `now` is in: its `used`, or nothing once the window the snapshot
 * belongs to has closed (and nothing for a feature the token has no snapshot for).
 */
export function usedInWindow(snapshot: CapUsage | undefined, now: number): number {
  if (snapshot === undefined) return 0
  return snapshot.resetsAt !== undefined && now >= snapshot.resetsAt ? 0 : snapshot.used
}
