import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { EventEmitter } from 'node:events'
import type { EntitlementTokenClaims, FeatureClaim, UsagePeriod } from 'entitle'
import {
  addMonths,
  currentWindowEnd,
  formatUsageLineProblem,
  NEVER,
  signEntitlementToken,
  type UsageBatchAnswer,
  type UsageLineAnswer,
  type UsageRefusalCode,
  usageLineSchemaProblem,
  type WireUsageLine,
} from 'entitle/protocol'
import { type Catalog, entitlementFor, sells, UnknownPlanError } from './catalog.js'
import type { Db } from './db.js'
import type { Keyring } from './keys.js'
import { Problem } from './problem.js'
import type { AccessRequestInput, Order, UsageBatchEnvelope } from './schemas.js'

const DAY_MS = 86_400_000

export interface LicenseServiceOptions {
  db: Db
  catalog: Catalog
  keyring: Keyring
  /** `iss` of every token, and the public URL of the server. */
  issuer: string
  /** `aud` of every token: the product. */
  audience: string
  /** Life of an online token. Default 3 600 s. */
  tokenTtlSec?: number
  now?: () => number
}

/** Who is asking: the vendor's multi-tenant app (every customer) or one customer (by API key or license key). */
export type Scope = { readonly kind: 'service' } | { readonly kind: 'customer'; readonly customerId: string }

/** A change a client should hear about over the event stream. */
export interface LicenseEvent {
  readonly id: number
  readonly type: 'entitlements' | 'revocations'
  readonly customerId: string | null
}

interface LicenseRow {
  customer_id: string
  sku: string
  seats: number
  addons: string
  term_start: number
  term_end: number
  status: 'active' | 'cancelled' | 'revoked'
  version: number
  updated_at: number
  /** When usage was last stored for this license (0: never). */
  usage_at: number
}

interface TokenRow {
  jti: string
  token: string
  license_version: number
  issued_at: number
  expires_at: number
}

/** A secret for a person or a program to hold, and the hash the database keeps instead. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex')
}
const newSecret = (prefix: string) => `${prefix}_${randomBytes(24).toString('base64url')}`

function licenseView(row: LicenseRow) {
  return {
    customerId: row.customer_id,
    sku: row.sku,
    seats: row.seats,
    addons: JSON.parse(row.addons) as string[],
    termStart: new Date(row.term_start).toISOString(),
    termEnd: new Date(row.term_end).toISOString(),
    status: row.status,
    version: row.version,
  }
}

/**
 * The license repository and everything that changes it: orders, tokens, devices, usage, access requests and
 * revocations. Each change that must agree with another happens in one SQLite transaction; events are published
 * after the commit.
 */
export function createLicenseService(options: LicenseServiceOptions) {
  const { db, catalog, keyring } = options
  const now = options.now ?? Date.now
  const ttlSec = options.tokenTtlSec ?? 3600
  const emitter = new EventEmitter()
  emitter.setMaxListeners(0)

  const q = {
    customerByKey: db.prepare('SELECT id FROM customers WHERE api_key_hash = ?'),
    licenseByKey: db.prepare('SELECT customer_id FROM licenses WHERE license_key_hash = ?'),
    customer: db.prepare('SELECT id, name, created_at FROM customers WHERE id = ?'),
    license: db.prepare('SELECT * FROM licenses WHERE customer_id = ?'),
    grants: db.prepare('SELECT feature FROM grants WHERE customer_id = ? ORDER BY feature'),
    latestToken: db.prepare(
      `SELECT jti, token, license_version, issued_at, expires_at FROM tokens
       WHERE customer_id = ? AND kind = ? AND device IS ? ORDER BY issued_at DESC, rowid DESC LIMIT 1`,
    ),
    revoked: db.prepare('SELECT 1 FROM revocations WHERE jti = ?'),
    insertToken: db.prepare(
      `INSERT INTO tokens (jti, customer_id, device, kind, license_version, issued_at, expires_at, token)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    total: db.prepare(
      'SELECT total FROM usage_totals WHERE customer_id = ? AND metric = ? AND window_end = ?',
    ),
    // Only a repeated (customer, id) is ignored: any other constraint failing is an error, never a "duplicate".
    insertLine: db.prepare(
      `INSERT INTO usage_lines (id, customer_id, metric, amount, start, end, window_end, batch, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id, id) DO NOTHING`,
    ),
    touchUsage: db.prepare('UPDATE licenses SET usage_at = ? WHERE customer_id = ?'),
    addTotal: db.prepare(
      `INSERT INTO usage_totals (customer_id, metric, window_end, total) VALUES (?, ?, ?, ?)
       ON CONFLICT (customer_id, metric, window_end) DO UPDATE SET total = total + excluded.total`,
    ),
    insertEvent: db.prepare('INSERT INTO events (type, customer_id, at) VALUES (?, ?, ?)'),
    bumpVersion: db.prepare(
      'UPDATE licenses SET version = version + 1, updated_at = ? WHERE customer_id = ?',
    ),
    revokeLive: db.prepare(
      `INSERT OR IGNORE INTO revocations (jti, customer_id, revoked_at)
       SELECT jti, customer_id, ? FROM tokens WHERE customer_id = ? AND expires_at > ? AND (? IS NULL OR device = ?)`,
    ),
  }

  /** Events recorded inside a transaction, published once it commits. */
  let pending: Array<Omit<LicenseEvent, 'id'>> = []
  function record(type: LicenseEvent['type'], customerId: string | null): void {
    pending.push({ type, customerId })
  }
  function publish(): void {
    const events = pending
    pending = []
    for (const event of events) {
      const id = Number(q.insertEvent.run(event.type, event.customerId, now()).lastInsertRowid)
      emitter.emit('event', { ...event, id } satisfies LicenseEvent)
    }
  }
  /** Runs `work` in a transaction; publishes its events after the commit, drops them on a rollback. */
  function transaction<T>(work: () => T): T {
    try {
      const result = db.transaction(work)()
      publish()
      return result
    } catch (error) {
      pending = []
      throw error
    }
  }

  function licenseOf(customerId: string): LicenseRow | undefined {
    return q.license.get(customerId) as LicenseRow | undefined
  }
  function activeLicense(customerId: string): LicenseRow {
    const license = licenseOf(customerId)
    if (license === undefined) throw new Problem(404, 'No license', `no license for customer ${customerId}`)
    if (license.status !== 'active')
      throw new Problem(410, 'License ended', `the license of ${customerId} is ${license.status}`)
    return license
  }

  /**
   * The end of the usage window of `metric` that contains `at`, anchored at the license term's start, or why there
   * is none: the license's plan left the catalog, or `at` lies where no window can be computed.
   */
  function windowEnd(
    license: LicenseRow,
    metric: string,
    at: number,
  ): number | { code: UsageRefusalCode; reason: string } {
    let period: UsagePeriod
    try {
      period = entitlementFor(catalog, termsOf(license)).caps.get(metric)?.period ?? 'month'
    } catch (error) {
      if (!(error instanceof UnknownPlanError)) throw error
      return { code: 'not_priced', reason: `not priced: ${error.message}` }
    }
    const end = currentWindowEnd(period, license.term_start, at) ?? NEVER
    if (!Number.isSafeInteger(end)) return { code: 'invalid', reason: 'start: no usage window contains it' }
    return end
  }

  /** The license's features as the catalog sells them, or a 503 problem when its plan left the catalog. */
  function priced(license: LicenseRow) {
    try {
      return entitlementFor(catalog, termsOf(license))
    } catch (error) {
      if (!(error instanceof UnknownPlanError)) throw error
      // The operator's to fix (put the plan back, or move the customer): the client keeps its last token meanwhile.
      throw new Problem(
        503,
        'Plan unavailable',
        `${error.message}: no token can be issued for ${license.customer_id}`,
        {},
        300,
      )
    }
  }

  function termsOf(license: LicenseRow) {
    return {
      sku: license.sku,
      seats: license.seats,
      addons: JSON.parse(license.addons) as string[],
      grants: (q.grants.all(license.customer_id) as Array<{ feature: string }>).map((row) => row.feature),
    }
  }

  /** Builds, validates and signs a token for a license; usage snapshots are read at this moment. */
  async function issue(
    license: LicenseRow,
    kind: 'online' | 'device' | 'offline',
    device: string | null,
  ): Promise<TokenRow> {
    const at = now()
    const iat = Math.floor(at / 1000)
    const { ent, caps } = priced(license)
    const features = ent.features as Record<string, FeatureClaim | true>
    for (const [name, cap] of caps) {
      const end = currentWindowEnd(cap.period, license.term_start, at)
      const used =
        (q.total.get(license.customer_id, name, end ?? NEVER) as { total: number } | undefined)?.total ?? 0
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
        },
      }
    }
    const graceEnds = license.term_end + catalog.graceDays * DAY_MS
    const term = { expiresAt: Math.floor(license.term_end / 1000), graceEndsAt: Math.floor(graceEnds / 1000) }
    const exp = kind === 'offline' ? Math.max(iat + ttlSec, term.graceEndsAt) : iat + ttlSec
    const claims: EntitlementTokenClaims = {
      iss: options.issuer,
      sub: license.customer_id,
      aud: options.audience,
      iat,
      exp,
      jti: randomUUID(),
      ent: {
        v: 1,
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
    q.insertToken.run(
      row.jti,
      license.customer_id,
      device,
      kind,
      row.license_version,
      at,
      row.expires_at,
      token,
    )
    return row
  }

  /** The held token while it is young, unrevoked and of the current license version; otherwise a new one. */
  async function currentToken(license: LicenseRow, kind: 'online' | 'device', device: string | null) {
    const held = q.latestToken.get(license.customer_id, kind, device) as TokenRow | undefined
    const young = held !== undefined && now() - held.issued_at < (ttlSec * 1000) / 2
    // Usage stored after the held token was signed: its snapshot is behind, so a new token (a new ETag) goes out.
    const counted = held !== undefined && held.issued_at > license.usage_at
    if (held && young && counted && held.license_version === license.version && !q.revoked.get(held.jti))
      return held
    return issue(license, kind, device)
  }

  function customerOfLicenseKey(licenseKey: string): string {
    const row = q.licenseByKey.get(hashSecret(licenseKey)) as { customer_id: string } | undefined
    if (row === undefined) throw new Problem(401, 'Unknown license key')
    return row.customer_id
  }

  function usage(customerId: string) {
    requireCustomer(customerId)
    return (
      db
        .prepare(
          'SELECT metric, window_end, total FROM usage_totals WHERE customer_id = ? ORDER BY window_end DESC, metric',
        )
        .all(customerId) as Array<{ metric: string; window_end: number; total: number }>
    ).map((row) => ({
      metric: row.metric,
      windowEnd: row.window_end === NEVER ? null : new Date(row.window_end).toISOString(),
      total: row.total,
    }))
  }

  function requireCustomer(customerId: string) {
    const customer = q.customer.get(customerId) as
      | { id: string; name: string; created_at: number }
      | undefined
    if (customer === undefined) throw new Problem(404, 'Unknown customer', `no customer ${customerId}`)
    return customer
  }

  return {
    events: emitter as EventEmitter<{ event: [LicenseEvent] }>,

    /** Resolves a bearer credential to a customer scope: a customer API key or a license key. */
    scopeOfCustomerCredential(secret: string): Scope | undefined {
      const hash = hashSecret(secret)
      const byKey = q.customerByKey.get(hash) as { id: string } | undefined
      if (byKey) return { kind: 'customer', customerId: byKey.id }
      const byLicense = q.licenseByKey.get(hash) as { customer_id: string } | undefined
      if (byLicense) return { kind: 'customer', customerId: byLicense.customer_id }
      return undefined
    },

    /** Creates or changes a license from an order; idempotent by order id. */
    applyOrder(order: Order, bodyHash: string): { status: 200 | 201; body: Record<string, unknown> } {
      return transaction(() => {
        const seen = db
          .prepare('SELECT body_hash, status, response FROM orders WHERE id = ?')
          .get(order.orderId) as { body_hash: string; status: 200 | 201; response: string } | undefined
        if (seen) {
          if (seen.body_hash !== bodyHash)
            throw new Problem(
              409,
              'Order id reused',
              `order ${order.orderId} was placed before with another body`,
            )
          return { status: seen.status, body: { ...JSON.parse(seen.response), replayed: true } }
        }
        const at = now()
        const customerId = order.customer.id
        const existing = licenseOf(customerId)
        const plan = order.sku === undefined ? undefined : catalog.plans.get(order.sku)
        if (order.sku !== undefined && plan === undefined)
          throw new Problem(422, 'Unknown SKU', `the catalog has no SKU ${order.sku}`)
        // A retired plan is honoured for those who hold it, never sold again (a renewal keeps it).
        if (plan?.retired && order.sku !== existing?.sku)
          throw new Problem(422, 'Plan retired', `SKU ${order.sku} is no longer sold`)
        if (order.tier !== undefined && plan !== undefined && plan.tier !== order.tier)
          throw new Problem(422, 'Tier mismatch', `SKU ${order.sku} is tier ${plan.tier}, not ${order.tier}`)
        for (const addon of order.addons ?? []) {
          const sold = catalog.addons.get(addon)
          if (sold === undefined)
            throw new Problem(422, 'Unknown add-on', `the catalog has no add-on ${addon}`)
          if (sold.retired && !(JSON.parse(existing?.addons ?? '[]') as string[]).includes(addon))
            throw new Problem(422, 'Add-on retired', `add-on ${addon} is no longer sold`)
        }
        let status: 200 | 201 = 200
        let credentials: { apiKey: string; licenseKey: string } | undefined

        switch (order.type) {
          case 'purchase': {
            if (order.sku === undefined) throw new Problem(422, 'SKU required', 'a purchase names a SKU')
            if (existing?.status === 'active')
              throw new Problem(
                409,
                'Already licensed',
                `${customerId} has an active license: place an upgrade`,
              )
            if (existing?.status === 'revoked')
              throw new Problem(409, 'License revoked', `${customerId}'s license was revoked; ask an admin`)
            credentials = { apiKey: newSecret('ck'), licenseKey: newSecret('lk') }
            if (!q.customer.get(customerId)) {
              db.prepare(
                'INSERT INTO customers (id, name, api_key_hash, created_at) VALUES (?, ?, ?, ?)',
              ).run(customerId, order.customer.name ?? customerId, hashSecret(credentials.apiKey), at)
            } else {
              db.prepare('UPDATE customers SET api_key_hash = ? WHERE id = ?').run(
                hashSecret(credentials.apiKey),
                customerId,
              )
            }
            const start = Math.floor(at / 1000) * 1000
            db.prepare(
              `INSERT INTO licenses (customer_id, license_key_hash, sku, seats, addons, term_start, term_end, status, version, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'active', 1, ?)
               ON CONFLICT (customer_id) DO UPDATE SET license_key_hash = excluded.license_key_hash, sku = excluded.sku,
                 seats = excluded.seats, addons = excluded.addons, term_start = excluded.term_start,
                 term_end = excluded.term_end, status = 'active', version = licenses.version + 1, updated_at = excluded.updated_at`,
            ).run(
              customerId,
              hashSecret(credentials.licenseKey),
              order.sku,
              order.seats ?? 1,
              JSON.stringify(order.addons ?? []),
              start,
              addMonths(start, order.termMonths ?? 12),
              at,
            )
            status = 201
            break
          }
          case 'upgrade':
          case 'downgrade': {
            const license = activeLicense(customerId)
            const from = catalog.plans.get(license.sku)
            if (from === undefined)
              throw new Problem(409, 'Plan unavailable', `the plan ${license.sku} is not in the catalog`)
            const to = plan ?? from
            if (order.type === 'upgrade' ? to.tier < from.tier : to.tier > from.tier)
              throw new Problem(
                422,
                `Not a ${order.type}`,
                `${license.sku} (tier ${from.tier}) to ${order.sku} (tier ${to.tier}) is not a ${order.type}`,
              )
            db.prepare(
              'UPDATE licenses SET sku = ?, seats = ?, addons = ?, version = version + 1, updated_at = ? WHERE customer_id = ?',
            ).run(
              order.sku ?? license.sku,
              order.seats ?? license.seats,
              JSON.stringify(order.addons ?? JSON.parse(license.addons)),
              at,
              customerId,
            )
            break
          }
          case 'renewal': {
            const license = activeLicense(customerId)
            const end = addMonths(
              Math.max(license.term_end, Math.floor(at / 1000) * 1000),
              order.termMonths ?? 12,
            )
            db.prepare(
              'UPDATE licenses SET term_end = ?, version = version + 1, updated_at = ? WHERE customer_id = ?',
            ).run(end, at, customerId)
            break
          }
          case 'cancellation': {
            activeLicense(customerId)
            db.prepare(
              "UPDATE licenses SET status = 'cancelled', version = version + 1, updated_at = ? WHERE customer_id = ?",
            ).run(at, customerId)
            q.revokeLive.run(at, customerId, at, null, null)
            record('revocations', customerId)
            break
          }
        }
        record('entitlements', customerId)
        const body = {
          orderId: order.orderId,
          type: order.type,
          license: licenseView(licenseOf(customerId)!),
        }
        db.prepare(
          'INSERT INTO orders (id, customer_id, body_hash, status, response, received_at) VALUES (?, ?, ?, ?, ?, ?)',
        ).run(order.orderId, customerId, bodyHash, status, JSON.stringify(body), at)
        // Credentials go out once, with the first answer; the stored answer never holds them.
        return { status, body: credentials ? { ...body, credentials } : body }
      })
    },

    /** Remembers an order signature; `false` when it was seen before (a replay). Forgets those past `maxAgeMs`. */
    rememberSignature(signature: string, maxAgeMs: number): boolean {
      const at = now()
      db.prepare('DELETE FROM order_signatures WHERE seen_at < ?').run(at - maxAgeMs)
      return (
        db
          .prepare('INSERT OR IGNORE INTO order_signatures (signature, seen_at) VALUES (?, ?)')
          .run(signature, at).changes === 1
      )
    },

    /** The customer's online token, reused while young (same ETag) so conditional requests answer 304. */
    async entitlementToken(customerId: string): Promise<{ token: string; etag: string }> {
      const row = await currentToken(activeLicense(customerId), 'online', null)
      return { token: row.token, etag: `"${row.jti}"` }
    },

    /** Binds a device to the license (at most `seats` devices) and returns a token bound to it. */
    async activate(licenseKey: string, fingerprint: string, offline: boolean) {
      const customerId = customerOfLicenseKey(licenseKey)
      const license = activeLicense(customerId)
      const at = now()
      transaction(() => {
        const known = db
          .prepare('SELECT 1 FROM devices WHERE customer_id = ? AND fingerprint = ?')
          .get(customerId, fingerprint)
        if (known) {
          db.prepare('UPDATE devices SET last_seen = ? WHERE customer_id = ? AND fingerprint = ?').run(
            at,
            customerId,
            fingerprint,
          )
          return
        }
        const { active } = db
          .prepare('SELECT COUNT(*) AS active FROM devices WHERE customer_id = ?')
          .get(customerId) as {
          active: number
        }
        if (active >= license.seats)
          throw new Problem(409, 'Device limit reached', `${active} of ${license.seats} devices are active`, {
            limit: license.seats,
            active,
          })
        db.prepare(
          'INSERT INTO devices (customer_id, fingerprint, activated_at, last_seen) VALUES (?, ?, ?, ?)',
        ).run(customerId, fingerprint, at, at)
      })
      const row = offline
        ? await issue(license, 'offline', fingerprint)
        : await currentToken(license, 'device', fingerprint)
      return { customerId, token: row.token, expiresAt: new Date(row.expires_at).toISOString() }
    },

    /** Frees a device's seat and revokes the tokens bound to it. */
    deactivate(licenseKey: string, fingerprint: string): boolean {
      const customerId = customerOfLicenseKey(licenseKey)
      return transaction(() => {
        const gone = db
          .prepare('DELETE FROM devices WHERE customer_id = ? AND fingerprint = ?')
          .run(customerId, fingerprint)
        if (gone.changes === 0) return false
        q.revokeLive.run(now(), customerId, now(), fingerprint, fingerprint)
        record('revocations', customerId)
        return true
      })
    },

    /** Revoked tokens that have not expired yet: all of them for the service, a customer's own for a customer. */
    revocations(scope: Scope): string[] {
      const rows =
        scope.kind === 'service'
          ? db
              .prepare(
                'SELECT r.jti FROM revocations r JOIN tokens t USING (jti) WHERE t.expires_at > ? ORDER BY r.jti',
              )
              .all(now())
          : db
              .prepare(
                'SELECT r.jti FROM revocations r JOIN tokens t USING (jti) WHERE t.expires_at > ? AND r.customer_id = ? ORDER BY r.jti',
              )
              .all(now(), scope.customerId)
      return (rows as Array<{ jti: string }>).map((row) => row.jti)
    },

    /**
     * Stores a usage batch, judging each line on its own: a line id counts once per customer, ever (the
     * exactly-once contract of docs/metering.md); a line that breaks the protocol's rules, that the scope may not
     * write, or that cannot be priced is refused alone, with a code and a reason, and changes nothing. The answer
     * lists every line in the order given.
     */
    ingest(scope: Scope, batch: UsageBatchEnvelope): UsageBatchAnswer {
      const answers: UsageLineAnswer[] = []
      let accepted = 0
      let duplicates = 0
      const received = now()
      const licenses = new Map<string, LicenseRow | undefined>()
      const touched = new Set<string>()
      const refuse = (id: string | null, code: UsageRefusalCode, reason: string) => {
        answers.push({ id, status: 'refused', code, reason })
      }
      /** Stores one valid line, or says why not. */
      const store = (line: WireUsageLine) => {
        const subject = line.subject ?? (scope.kind === 'customer' ? scope.customerId : undefined)
        if (subject === undefined) return refuse(line.id, 'subject_required', 'subject required')
        if (scope.kind === 'customer' && subject !== scope.customerId)
          return refuse(line.id, 'forbidden', 'forbidden')
        if (!catalog.meters.has(line.metric)) return refuse(line.id, 'unknown_metric', 'unknown metric')
        if (!licenses.has(subject)) licenses.set(subject, licenseOf(subject))
        const license = licenses.get(subject)
        if (license === undefined) return refuse(line.id, 'unknown_customer', 'unknown customer')
        const end = windowEnd(license, line.metric, line.start)
        if (typeof end !== 'number') return refuse(line.id, end.code, end.reason)
        const inserted = q.insertLine.run(
          line.id,
          subject,
          line.metric,
          line.amount,
          line.start,
          line.end,
          end,
          batch.batch ?? null,
          received,
        )
        if (inserted.changes === 0) {
          duplicates++
          answers.push({ id: line.id, status: 'duplicate' })
          return
        }
        accepted++
        q.addTotal.run(subject, line.metric, end, line.amount)
        touched.add(subject)
        answers.push({ id: line.id, status: 'accepted' })
      }
      transaction(() => {
        for (const value of batch.lines) {
          const problem = usageLineSchemaProblem(value)
          if (problem === undefined) store(value as WireUsageLine)
          else {
            const id = (value as { id?: unknown } | null)?.id
            refuse(typeof id === 'string' ? id : null, 'invalid', formatUsageLineProblem(problem))
          }
        }
        for (const customerId of touched) q.touchUsage.run(received, customerId)
      })
      const rejected = answers.flatMap((answer) =>
        answer.status === 'refused' ? [{ id: answer.id, code: answer.code, reason: answer.reason }] : [],
      )
      return { at: now(), accepted, duplicates, refused: rejected.length, lines: answers, rejected }
    },

    /** Usage totals of a customer, per metric and window, newest window first. */
    usage,

    /** A user asks for a feature their plan lacks; an admin decides. A pending request for the same is reused. */
    requestAccess(customerId: string, input: AccessRequestInput) {
      activeLicense(customerId)
      if (!sells(catalog, input.feature))
        throw new Problem(422, 'Unknown feature', `the catalog has no feature ${input.feature}`)
      return transaction(() => {
        const open = db
          .prepare(
            "SELECT id FROM access_requests WHERE customer_id = ? AND feature = ? AND status = 'pending'",
          )
          .get(customerId, input.feature) as { id: string } | undefined
        if (open) return { id: open.id, status: 'pending' as const, created: false }
        const id = `ar_${randomBytes(8).toString('hex')}`
        db.prepare(
          `INSERT INTO access_requests (id, customer_id, feature, requested_by, note, status, created_at)
           VALUES (?, ?, ?, ?, ?, 'pending', ?)`,
        ).run(id, customerId, input.feature, input.requestedBy, input.note ?? null, now())
        return { id, status: 'pending' as const, created: true }
      })
    },

    accessRequests(status: 'pending' | 'approved' | 'denied' | undefined) {
      return db
        .prepare(
          `SELECT id, customer_id AS customerId, feature, requested_by AS requestedBy, note, status, decided_by AS decidedBy
           FROM access_requests WHERE (? IS NULL OR status = ?) ORDER BY created_at, id`,
        )
        .all(status ?? null, status ?? null)
    },

    /** Approves (a grant in the customer's next token) or denies a pending request. */
    decideAccess(id: string, approve: boolean, by: string) {
      return transaction(() => {
        const request = db
          .prepare('SELECT customer_id, feature, status FROM access_requests WHERE id = ?')
          .get(id) as { customer_id: string; feature: string; status: string } | undefined
        if (request === undefined) throw new Problem(404, 'Unknown access request', `no access request ${id}`)
        if (request.status !== 'pending')
          throw new Problem(409, 'Already decided', `access request ${id} was ${request.status}`)
        const status = approve ? 'approved' : 'denied'
        db.prepare('UPDATE access_requests SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?').run(
          status,
          by,
          now(),
          id,
        )
        if (approve) {
          db.prepare(
            'INSERT OR IGNORE INTO grants (customer_id, feature, request_id, created_at) VALUES (?, ?, ?, ?)',
          ).run(request.customer_id, request.feature, id, now())
          q.bumpVersion.run(now(), request.customer_id)
          record('entitlements', request.customer_id)
        }
        return { id, status, customerId: request.customer_id, feature: request.feature }
      })
    },

    /** Ends a license at once: every live token is revoked and clients hear of it. */
    revoke(customerId: string) {
      return transaction(() => {
        const license = licenseOf(customerId)
        if (license === undefined)
          throw new Problem(404, 'No license', `no license for customer ${customerId}`)
        const at = now()
        db.prepare(
          "UPDATE licenses SET status = 'revoked', version = version + 1, updated_at = ? WHERE customer_id = ?",
        ).run(at, customerId)
        const revoked = q.revokeLive.run(at, customerId, at, null, null).changes
        record('revocations', customerId)
        record('entitlements', customerId)
        return { customerId, status: 'revoked' as const, tokensRevoked: revoked }
      })
    },

    /** New credentials for a customer (the old ones stop working at once). */
    rotateCredentials(customerId: string) {
      requireCustomer(customerId)
      const credentials = { apiKey: newSecret('ck'), licenseKey: newSecret('lk') }
      transaction(() => {
        db.prepare('UPDATE customers SET api_key_hash = ? WHERE id = ?').run(
          hashSecret(credentials.apiKey),
          customerId,
        )
        db.prepare('UPDATE licenses SET license_key_hash = ? WHERE customer_id = ?').run(
          hashSecret(credentials.licenseKey),
          customerId,
        )
      })
      return { customerId, credentials }
    },

    customers() {
      return (
        db
          .prepare(
            'SELECT c.id, c.name, l.* FROM customers c LEFT JOIN licenses l ON l.customer_id = c.id ORDER BY c.id',
          )
          .all() as Array<LicenseRow & { id: string; name: string }>
      ).map((row) => ({ id: row.id, name: row.name, license: row.sku ? licenseView(row) : null }))
    },

    customer(customerId: string) {
      const customer = requireCustomer(customerId)
      const license = licenseOf(customerId)
      return {
        id: customer.id,
        name: customer.name,
        license: license ? licenseView(license) : null,
        grants: (q.grants.all(customerId) as Array<{ feature: string }>).map((row) => row.feature),
        devices: db
          .prepare(
            'SELECT fingerprint, activated_at AS activatedAt, last_seen AS lastSeen FROM devices WHERE customer_id = ?',
          )
          .all(customerId),
        usage: usage(customerId),
      }
    },

    /** Events after `afterId` that `scope` may see, for a reconnecting stream's `Last-Event-ID`. */
    eventsSince(scope: Scope, afterId: number): LicenseEvent[] {
      return (
        db
          .prepare(
            'SELECT id, type, customer_id AS customerId FROM events WHERE id > ? ORDER BY id LIMIT 1000',
          )
          .all(afterId) as LicenseEvent[]
      ).filter((event) => visible(scope, event))
    },
  }
}

/** A customer sees its own events and list-wide revocation notices; the service sees everything. */
export function visible(scope: Scope, event: LicenseEvent): boolean {
  return scope.kind === 'service' || event.customerId === scope.customerId
}

export type LicenseService = ReturnType<typeof createLicenseService>
