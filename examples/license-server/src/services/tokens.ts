import { randomUUID } from 'node:crypto'
import type { EntitlementTokenClaims, FeatureClaim } from 'entitle'
import {
  currentWindowEnd,
  formatVersionFor,
  NEVER,
  signEntitlementToken,
  signRevocationList,
} from 'entitle/protocol'
import type { Catalog } from '../catalog.js'
import type { Keyring } from '../keys.js'
import type { LicenseRow, Repository, TokenKind, TokenRow } from '../repository.js'
import type { Scope } from './credentials.js'
import type { CreditService } from './credits.js'
import { activeLicense, pricedEntitlement } from './licenses.js'

const DAY_MS = 86_400_000
/** At most this many resources' usage in a per-resource cap's token snapshot. */
const MAX_RESOURCE_SNAPSHOTS = 100

export interface TokenServiceOptions {
  /** The credit ledger: each token carries the customer's balances as of its signing. */
  credits: CreditService
  repo: Repository
  catalog: Catalog
  keyring: Keyring
  /** `iss` of every token, and the public URL of the server. */
  issuer: string
  /** `aud` of every token: the product. */
  audience: string
  /** Life of an online token, seconds. */
  ttlSec: number
  now: () => number
}

/** Signs tokens for licenses, reuses them while young, and lists (and signs) revocations. */
export function createTokenService(options: TokenServiceOptions) {
  const { repo, catalog, keyring, ttlSec, now } = options

  /** The license term as claims: a trial ends at its end (`trial_ended` after); a paid term has its grace. */
  function termOf(license: LicenseRow) {
    if (license.trial_end !== null) return { trialEndsAt: Math.floor(license.trial_end / 1000) }
    const graceEnds = license.term_end + catalog.graceDays * DAY_MS
    return { expiresAt: Math.floor(license.term_end / 1000), graceEndsAt: Math.floor(graceEnds / 1000) }
  }

  /** When an offline license issued at `at` would expire: the end of the trial, or of the term's grace (epoch ms). */
  function offlineUntil(license: LicenseRow, at: number): number {
    const term = termOf(license)
    const lastsUntil = (term.trialEndsAt ?? term.graceEndsAt) * 1000
    return Math.max(Math.floor(at / 1000) * 1000 + ttlSec * 1000, lastsUntil)
  }

  /**
   * A per-resource cap's snapshot: the usage of at most `MAX_RESOURCE_SNAPSHOTS` resources in the window, the most
   * used first (those nearest their limit), so a token stays small whatever the number of resources; the SDK
   * counts any other from zero plus what it records.
   */
  function resourceSnapshot(customerId: string, metric: string, kind: string, windowEnd: number) {
    const resources: Record<string, { cap: { used: number } }> = {}
    for (const row of repo.resourceTotals(customerId, metric, windowEnd, MAX_RESOURCE_SNAPSHOTS)) {
      if (!row.resource.startsWith(`${kind}:`)) continue
      resources[row.resource.slice(kind.length + 1)] = { cap: { used: row.total } }
    }
    return resources
  }

  /** Builds, validates and signs a token for a license; usage snapshots are read at this moment. */
  async function issue(license: LicenseRow, kind: TokenKind, device: string | null): Promise<TokenRow> {
    const at = now()
    const iat = Math.floor(at / 1000)
    const { ent, caps } = pricedEntitlement(catalog, repo, license)
    const features = ent.features as Record<string, FeatureClaim | true>
    for (const [name, cap] of caps) {
      const end = currentWindowEnd(cap.period, license.term_start, at)
      const used = repo.total(license.customer_id, name, end ?? NEVER)
      const claim = features[name] === true ? {} : (features[name] as FeatureClaim)
      features[name] = {
        ...claim,
        // asOf: when `used` was read, to the millisecond, so clients know which of their reports it includes.
        cap: {
          limit: cap.limit,
          period: cap.period,
          used,
          asOf: at / 1000,
          ...(end ? { resetsAt: Math.floor(end / 1000) } : {}),
          ...(cap.soft ? { soft: true as const } : {}),
          ...(cap.ceiling !== undefined ? { ceiling: cap.ceiling } : {}),
          ...(cap.thresholds ? { thresholds: [...cap.thresholds] } : {}),
        },
      }
      const per = (features[name] as FeatureClaim).per
      if (per?.cap !== undefined) {
        const resources = resourceSnapshot(license.customer_id, name, per.kind, end ?? NEVER)
        if (Object.keys(resources).length > 0) (features[name] as FeatureClaim).per = { ...per, resources }
      }
    }
    const credits = options.credits.snapshot(license, at)
    if (credits !== undefined) ent.credits = credits
    const term = termOf(license)
    const exp = kind === 'offline' ? Math.floor(offlineUntil(license, at) / 1000) : iat + ttlSec
    const claims: EntitlementTokenClaims = {
      iss: options.issuer,
      sub: license.customer_id,
      aud: options.audience,
      iat,
      exp,
      jti: randomUUID(),
      ent: {
        // Version 1 unless the license needs 2 (a per-resource grant, a pool, credits): customers who need nothing new
        // keep tokens every SDK version reads.
        v: formatVersionFor(ent),
        ...ent,
        term,
        ...(device ? { devices: { max: license.seats, fingerprints: [device] } } : {}),
      },
    }
    // Validated by the SDK's own schema before signing: a server bug fails here, not in every customer's app.
    const { kid, key } = await keyring.signer()
    const token = await signEntitlementToken(claims, { key, kid, alg: 'EdDSA' })
    const row = {
      jti: claims.jti,
      token,
      license_version: license.version,
      issued_at: at,
      expires_at: exp * 1000,
    }
    repo.insertToken({ ...row, customerId: license.customer_id, device, kind, kid })
    return row
  }

  /** The held token while it is young, unrevoked and of the current license version; otherwise a new one. */
  async function current(license: LicenseRow, kind: 'online' | 'device', device: string | null) {
    const held = repo.latestToken(license.customer_id, kind, device)
    const young = held !== undefined && now() - held.issued_at < (ttlSec * 1000) / 2
    // Usage stored after the held token was signed: its snapshot is behind, so a new token (a new ETag) goes out.
    const counted = held !== undefined && held.issued_at > license.usage_at
    // Credits that time alone changed (a month's allowance, a grant's start or end) need a new snapshot.
    if (
      held &&
      young &&
      counted &&
      held.license_version === license.version &&
      !repo.isRevoked(held.jti) &&
      !options.credits.movedBetween(license, held.issued_at, now())
    )
      return held
    return issue(license, kind, device)
  }

  /** Revoked tokens that have not expired yet: all of them for the service, a customer's own for a customer. */
  function revocations(scope: Scope): string[] {
    return repo.revocations(now(), scope.kind === 'service' ? null : scope.customerId)
  }

  return {
    issue,
    current,
    revocations,
    offlineUntil,

    /** The customer's online token, reused while young (same ETag) so conditional requests answer 304. */
    async entitlementToken(customerId: string): Promise<{ token: string; etag: string }> {
      const row = await current(activeLicense(repo, customerId), 'online', null)
      return { token: row.token, etag: `"${row.jti}"` }
    },

    /** The same list, signed (`revocation-list+jwt`): for an app with no network (`client.importRevocations`). */
    async signedRevocations(scope: Scope): Promise<string> {
      const { kid, key } = await keyring.signer()
      return signRevocationList(
        {
          issuer: options.issuer,
          audience: options.audience,
          revoked: revocations(scope),
          issuedAt: Math.floor(now() / 1000),
        },
        { key, kid, alg: 'EdDSA' },
      )
    },
  }
}

export type TokenService = ReturnType<typeof createTokenService>
