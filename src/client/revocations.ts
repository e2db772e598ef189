import { EntitlementError } from '../core/errors.js'
import type { EntitlementVerifier } from '../core/verify.js'
import type { Platform } from '../platform/platform.js'
import type { LicenseServerClient } from '../transport/license-server-client.js'
import type { SerializedStorage } from './serialized-storage.js'

const REVOKED_KEY = 'entitle:revoked'

interface StoredRevocations {
  revoked?: unknown
  etag?: unknown
  imported?: { issuedAt?: unknown; revoked?: unknown }
}

/** Every token id the client knows to be revoked, from the server's list and from an imported signed list. */
export interface Revocations {
  has(tokenId: string): boolean
  /** How many ids are known revoked (a plain field: every check reads it). */
  size: number
  /** Reads what an earlier run stored. */
  restore(): Promise<void>
  /** Fetches the list now, then every interval. */
  start(): void
  /** Fetches the list now (an event said it changed). */
  refresh(): Promise<void>
  /** Verifies and takes a signed list; an older one than the list held changes nothing. */
  import(signedList: string): Promise<number>
  stop(): void
}

const strings = (value: unknown): string[] | undefined =>
  Array.isArray(value) && value.every((id) => typeof id === 'string') ? (value as string[]) : undefined

/**
 * The revocation list: fetched from the license server whenever the client has one (multi-tenant `server`, or a
 * single-tenant `revocations` source), and imported as a signed list where there is no network. Newly revoked ids
 * are handed to `revoked`, so the client can fetch a successor at once.
 */
export function createRevocations(options: {
  platform: Platform
  source: LicenseServerClient | undefined
  intervalMs: number
  storage: SerializedStorage
  verifier: EntitlementVerifier
  revoked: () => void
  report: (error: unknown) => void
  background: (work: Promise<unknown>) => void
}): Revocations {
  const { platform, source, storage } = options
  let fetched: readonly string[] = []
  let etag: string | undefined
  let imported: { issuedAt: number; revoked: readonly string[] } | undefined
  let all = new Set<string>()
  let timer: unknown
  let stopped = false

  /** Makes the set of every known id; a newly revoked one (not when read back from storage) is announced. */
  function rebuild(announce: boolean): void {
    const previous = all
    all = new Set(imported === undefined ? fetched : [...fetched, ...imported.revoked])
    api.size = all.size
    if (announce && [...all].some((id) => !previous.has(id))) options.revoked()
  }

  function save(): void {
    storage.write(REVOKED_KEY, JSON.stringify({ revoked: fetched, etag, ...(imported ? { imported } : {}) }))
  }

  async function refresh(): Promise<void> {
    if (source === undefined || stopped) return
    // The next poll is armed before this one asks: an answer the runtime never delivers (a Worker's request ended
    // with the fetch out) must not end the polling.
    if (options.intervalMs > 0) {
      platform.clearTimeout(timer)
      timer = platform.setTimeout(() => options.background(refresh()), options.intervalMs)
    }
    try {
      const response = await source.fetchRevocations(etag)
      if (response.status === 'ok') {
        fetched = response.revoked
        etag = response.etag
        save()
        rebuild(true)
      }
    } catch (error) {
      options.report(error)
    }
  }

  const api: Revocations = {
    has: (tokenId) => all.has(tokenId),
    // A plain field, not a getter: every check reads it.
    size: 0,
    async restore() {
      const text = await storage.read(REVOKED_KEY)
      if (text === undefined) return
      try {
        const parsed = JSON.parse(text) as StoredRevocations
        fetched = strings(parsed.revoked) ?? []
        etag = typeof parsed.etag === 'string' ? parsed.etag : undefined
        const ids = strings(parsed.imported?.revoked)
        const issuedAt = parsed.imported?.issuedAt
        if (ids !== undefined && typeof issuedAt === 'number') imported = { issuedAt, revoked: ids }
        rebuild(false)
      } catch (cause) {
        options.report(
          new EntitlementError('storage_failed', 'the stored revocation list is not JSON', { cause }),
        )
      }
    },
    start() {
      if (source !== undefined) options.background(refresh())
    },
    refresh,
    async import(signedList) {
      const list = await options.verifier.verifyRevocationList(signedList)
      if (imported === undefined || list.issuedAt > imported.issuedAt) {
        imported = { issuedAt: list.issuedAt, revoked: [...list.revoked] }
        save()
        rebuild(true)
      }
      return imported.revoked.length
    },
    stop() {
      stopped = true
      platform.clearTimeout(timer)
    },
  }
  return api
}
