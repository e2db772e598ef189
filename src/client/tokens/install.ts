import { diffEntitlements } from '../../core/changes.js'
import type { MemoTable } from '../answers/memo-table.js'
import type { ChangeEvent } from '../options.js'
import type { TrustedClock } from '../trusted-clock.js'
import { createEntry, type Entry, type EntryInput } from './cache-entry.js'
import type { RenewalSchedule } from './renewal-schedule.js'
import type { StoredTokens } from './stored-tokens.js'
import type { SubjectIndex } from './subject-index.js'

/**
 * Putting a verified token in memory, and everything that follows from it: the entry is indexed (replacing the
 * customer's last), trusted time learns from it, a fresh token is stored, a change is announced, and the renewal
 * is scheduled.
 */
export function createInstaller(parts: {
  readonly subjects: SubjectIndex
  readonly memos: Pick<MemoTable, 'allocate'>
  readonly clock: TrustedClock
  /** Whether a fresh token was signed just now by the license server (it then vouches for the time). */
  readonly signsNow: boolean
  /** Whether fresh tokens are written to storage (only when the app gave one). */
  readonly persistTokens: boolean
  readonly stored: StoredTokens
  readonly schedule: RenewalSchedule
  readonly emitChange: (event: ChangeEvent) => void
}) {
  const { subjects, clock } = parts
  let installed = 0

  return function install(input: EntryInput): Entry {
    const { key, verified, origin } = input
    const { entitlements } = verified
    const previous = subjects.current(key)?.entitlements
    const entry = createEntry(input, ++installed, parts.memos.allocate(entitlements))
    subjects.put(key, entry)
    // A token the license server just issued vouches for the time: it re-anchors trusted time, so a clock that once
    // ran fast recovers online. A token the app supplies (a license file) or one read from storage is no such
    // evidence, and only raises it.
    if (origin === 'fresh' && parts.signsNow) clock.anchorToServer(entitlements.issuedAt)
    else clock.observeIssuedAt(entitlements.issuedAt)
    if (origin === 'fresh' && parts.persistTokens) {
      const { token, etag, confirmedAt } = input
      parts.stored.save(key, { token, etag, confirmedAt, ...(verified.key ? { key: verified.key } : {}) })
    }
    if (previous !== undefined && previous.tokenId !== entitlements.tokenId) {
      const changes = diffEntitlements(previous, entitlements)
      if (changes.length > 0) parts.emitChange({ subject: key, previous, current: entitlements, changes })
    }
    parts.schedule.installed(entry)
    return entry
  }
}
