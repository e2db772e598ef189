import { type Db, prepare } from './db.js'
import { creditLedger } from './repository-credits.js'

export interface CustomerRow {
  id: string
  name: string
  created_at: number
}

export interface LicenseRow {
  customer_id: string
  sku: string
  seats: number
  addons: string
  term_start: number
  term_end: number
  /** While the license is a trial: when it ends (epoch ms); `null` once bought or never a trial. */
  trial_end: number | null
  status: 'active' | 'cancelled' | 'revoked'
  version: number
  updated_at: number
  /** When usage was last stored for this license (0: never). */
  usage_at: number
}

export interface TokenRow {
  jti: string
  token: string
  license_version: number
  issued_at: number
  expires_at: number
}

export interface DeviceRow {
  fingerprint: string
  activated_at: number
  last_seen: number
  /** The seat is held by an offline license until then (epoch ms; 0: none). */
  offline_until: number
}

export interface AccessRequestRow {
  id: string
  customerId: string
  feature: string
  requestedBy: string
  note: string | null
  status: 'pending' | 'approved' | 'denied'
  decidedBy: string | null
}

export interface EventRow {
  id: number
  type: 'entitlements' | 'revocations' | 'threshold' | 'lease.expired' | 'lease.revived' | 'lease.released'
  customerId: string | null
  /** What the event is about, beyond its customer (a threshold's metric, window and total), as JSON. */
  data: string | null
}

export interface UsageAlertRow {
  metric: string
  window_end: number
  threshold: number
  cap_limit: number
  total: number
  crossed_at: number
}

export type TokenKind = 'online' | 'device' | 'offline'

export interface LeaseRow {
  id: string
  customer_id: string
  pool: string
  holder: string
  metadata: string | null
  borrowed: number
  acquired_at: number
  heartbeat_at: number
  expires_at: number
  state: 'live' | 'expired' | 'released'
  ended_at: number | null
}

/** A prepared statement with typed reads. */

function customers(db: Db) {
  const q = {
    customer: prepare<CustomerRow>(db, 'SELECT id, name, created_at FROM customers WHERE id = ?'),
    byApiKey: prepare<{ id: string }>(db, 'SELECT id FROM customers WHERE api_key_hash = ?'),
    insert: prepare(db, 'INSERT INTO customers (id, name, api_key_hash, created_at) VALUES (?, ?, ?, ?)'),
    setApiKey: prepare(db, 'UPDATE customers SET api_key_hash = ? WHERE id = ?'),
    withLicenses: prepare<LicenseRow & { id: string; name: string }>(
      db,
      'SELECT c.id, c.name, l.* FROM customers c LEFT JOIN licenses l ON l.customer_id = c.id ORDER BY c.id',
    ),
  }
  return {
    customer: (id: string) => q.customer.get(id),
    customerIdByApiKey: (hash: string) => q.byApiKey.get(hash)?.id,
    insertCustomer: (id: string, name: string, apiKeyHash: string, at: number) =>
      void q.insert.run(id, name, apiKeyHash, at),
    setApiKey: (id: string, hash: string) => void q.setApiKey.run(hash, id),
    customersWithLicenses: () => q.withLicenses.all(),
  }
}

function licenses(db: Db) {
  const q = {
    license: prepare<LicenseRow>(db, 'SELECT * FROM licenses WHERE customer_id = ?'),
    byLicenseKey: prepare<{ customer_id: string }>(
      db,
      'SELECT customer_id FROM licenses WHERE license_key_hash = ?',
    ),
    upsert: prepare(
      db,
      `INSERT INTO licenses (customer_id, license_key_hash, sku, seats, addons, term_start, term_end, trial_end, status, version, updated_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'active', 1, ?)
       ON CONFLICT (customer_id) DO UPDATE SET license_key_hash = excluded.license_key_hash, sku = excluded.sku,
         seats = excluded.seats, addons = excluded.addons, term_start = excluded.term_start,
         term_end = excluded.term_end, trial_end = excluded.trial_end, status = 'active',
         version = licenses.version + 1, updated_at = excluded.updated_at`,
    ),
    convertTrial: prepare(
      db,
      `UPDATE licenses SET sku = ?, seats = ?, addons = ?, term_start = ?, term_end = ?, trial_end = NULL,
       version = version + 1, updated_at = ? WHERE customer_id = ?`,
    ),
    changePlan: prepare(
      db,
      'UPDATE licenses SET sku = ?, seats = ?, addons = ?, version = version + 1, updated_at = ? WHERE customer_id = ?',
    ),
    renew: prepare(
      db,
      'UPDATE licenses SET term_end = ?, version = version + 1, updated_at = ? WHERE customer_id = ?',
    ),
    setStatus: prepare(
      db,
      'UPDATE licenses SET status = ?, version = version + 1, updated_at = ? WHERE customer_id = ?',
    ),
    bumpVersion: prepare(
      db,
      'UPDATE licenses SET version = version + 1, updated_at = ? WHERE customer_id = ?',
    ),
    setLicenseKey: prepare(db, 'UPDATE licenses SET license_key_hash = ? WHERE customer_id = ?'),
    touchUsage: prepare(db, 'UPDATE licenses SET usage_at = ? WHERE customer_id = ?'),
  }
  return {
    license: (customerId: string) => q.license.get(customerId),
    customerIdByLicenseKey: (hash: string) => q.byLicenseKey.get(hash)?.customer_id,
    /** A new license, or a lapsed one bought again (the version goes on counting). */
    upsertLicense: (l: {
      customerId: string
      licenseKeyHash: string
      sku: string
      seats: number
      addons: readonly string[]
      termStart: number
      termEnd: number
      trialEnd: number | null
      at: number
    }) =>
      void q.upsert.run(
        l.customerId,
        l.licenseKeyHash,
        l.sku,
        l.seats,
        JSON.stringify(l.addons),
        l.termStart,
        l.termEnd,
        l.trialEnd,
        l.at,
      ),
    convertTrial: (
      customerId: string,
      p: {
        sku: string
        seats: number
        addons: readonly string[]
        termStart: number
        termEnd: number
        at: number
      },
    ) =>
      void q.convertTrial.run(
        p.sku,
        p.seats,
        JSON.stringify(p.addons),
        p.termStart,
        p.termEnd,
        p.at,
        customerId,
      ),
    changePlan: (customerId: string, sku: string, seats: number, addons: readonly string[], at: number) =>
      void q.changePlan.run(sku, seats, JSON.stringify(addons), at, customerId),
    renew: (customerId: string, termEnd: number, at: number) => void q.renew.run(termEnd, at, customerId),
    setStatus: (customerId: string, status: 'cancelled' | 'revoked', at: number) =>
      void q.setStatus.run(status, at, customerId),
    bumpVersion: (customerId: string, at: number) => void q.bumpVersion.run(at, customerId),
    setLicenseKey: (customerId: string, hash: string) => void q.setLicenseKey.run(hash, customerId),
    touchUsage: (customerId: string, at: number) => void q.touchUsage.run(at, customerId),
  }
}

function orders(db: Db) {
  const q = {
    order: prepare<{ body_hash: string; status: 200 | 201; response: string }>(
      db,
      'SELECT body_hash, status, response FROM orders WHERE id = ?',
    ),
    insert: prepare(
      db,
      'INSERT INTO orders (id, customer_id, body_hash, status, response, received_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    forgetSignatures: prepare(db, 'DELETE FROM order_signatures WHERE seen_at < ?'),
    rememberSignature: prepare(
      db,
      'INSERT OR IGNORE INTO order_signatures (signature, seen_at) VALUES (?, ?)',
    ),
  }
  return {
    order: (id: string) => q.order.get(id),
    insertOrder: (
      id: string,
      customerId: string,
      bodyHash: string,
      status: number,
      response: string,
      at: number,
    ) => void q.insert.run(id, customerId, bodyHash, status, response, at),
    /** Remembers a signature; `false` when it was seen before. Forgets those older than `before`. */
    rememberSignature(signature: string, at: number, before: number): boolean {
      q.forgetSignatures.run(before)
      return q.rememberSignature.run(signature, at).changes === 1
    },
  }
}

function devices(db: Db) {
  const columns = 'fingerprint, activated_at, last_seen, offline_until'
  const q = {
    device: prepare<DeviceRow>(
      db,
      `SELECT ${columns} FROM devices WHERE customer_id = ? AND fingerprint = ?`,
    ),
    devices: prepare<DeviceRow>(
      db,
      `SELECT ${columns} FROM devices WHERE customer_id = ? ORDER BY activated_at, fingerprint`,
    ),
    count: prepare<{ active: number }>(db, 'SELECT COUNT(*) AS active FROM devices WHERE customer_id = ?'),
    insert: prepare(
      db,
      'INSERT INTO devices (customer_id, fingerprint, activated_at, last_seen, offline_until) VALUES (?, ?, ?, ?, 0)',
    ),
    touch: prepare(db, 'UPDATE devices SET last_seen = ? WHERE customer_id = ? AND fingerprint = ?'),
    holdOffline: prepare(
      db,
      'UPDATE devices SET offline_until = MAX(offline_until, ?) WHERE customer_id = ? AND fingerprint = ?',
    ),
    delete: prepare(db, 'DELETE FROM devices WHERE customer_id = ? AND fingerprint = ?'),
  }
  return {
    device: (customerId: string, fingerprint: string) => q.device.get(customerId, fingerprint),
    devices: (customerId: string) => q.devices.all(customerId),
    countDevices: (customerId: string) => q.count.get(customerId)?.active ?? 0,
    insertDevice: (customerId: string, fingerprint: string, at: number) =>
      void q.insert.run(customerId, fingerprint, at, at),
    touchDevice: (customerId: string, fingerprint: string, at: number) =>
      void q.touch.run(at, customerId, fingerprint),
    holdOffline: (customerId: string, fingerprint: string, until: number) =>
      void q.holdOffline.run(until, customerId, fingerprint),
    deleteDevice: (customerId: string, fingerprint: string) =>
      q.delete.run(customerId, fingerprint).changes > 0,
  }
}

function tokens(db: Db) {
  const q = {
    latest: prepare<TokenRow>(
      db,
      `SELECT jti, token, license_version, issued_at, expires_at FROM tokens
       WHERE customer_id = ? AND kind = ? AND device IS ? ORDER BY issued_at DESC, rowid DESC LIMIT 1`,
    ),
    insert: prepare(
      db,
      `INSERT INTO tokens (jti, customer_id, device, kind, license_version, issued_at, expires_at, token, kid)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    isRevoked: prepare(db, 'SELECT 1 FROM revocations WHERE jti = ?'),
    revokeLive: prepare(
      db,
      `INSERT OR IGNORE INTO revocations (jti, customer_id, revoked_at)
       SELECT jti, customer_id, ? FROM tokens WHERE customer_id = ? AND expires_at > ? AND (? IS NULL OR device = ?)`,
    ),
    revocations: prepare<{ jti: string }>(
      db,
      `SELECT r.jti FROM revocations r JOIN tokens t USING (jti)
       WHERE t.expires_at > ? AND (? IS NULL OR r.customer_id = ?) ORDER BY r.jti`,
    ),
  }
  return {
    latestToken: (customerId: string, kind: TokenKind, device: string | null) =>
      q.latest.get(customerId, kind, device),
    insertToken: (
      t: TokenRow & { customerId: string; device: string | null; kind: TokenKind; kid: string },
    ) =>
      void q.insert.run(
        t.jti,
        t.customerId,
        t.device,
        t.kind,
        t.license_version,
        t.issued_at,
        t.expires_at,
        t.token,
        t.kid,
      ),
    isRevoked: (jti: string) => q.isRevoked.get(jti) !== undefined,
    /** Revokes the customer's live tokens (of one device, or all); returns how many. */
    revokeLive: (customerId: string, at: number, device: string | null = null) =>
      q.revokeLive.run(at, customerId, at, device, device).changes,
    /** Revoked tokens not yet expired: every customer's (`null`), or one's. */
    revocations: (at: number, customerId: string | null) =>
      q.revocations.all(at, customerId, customerId).map((row) => row.jti),
  }
}

function usage(db: Db) {
  const q = {
    total: prepare<{ total: number }>(
      db,
      'SELECT total FROM usage_totals WHERE customer_id = ? AND metric = ? AND window_end = ?',
    ),
    // Only a repeated (customer, id) is ignored: any other constraint failing is an error, never a "duplicate".
    insertLine: prepare(
      db,
      `INSERT INTO usage_lines (id, customer_id, metric, amount, start, end, window_end, batch, received_at, resource)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id, id) DO NOTHING`,
    ),
    addTotal: prepare(
      db,
      `INSERT INTO usage_totals (customer_id, metric, window_end, total) VALUES (?, ?, ?, ?)
       ON CONFLICT (customer_id, metric, window_end) DO UPDATE SET total = total + excluded.total`,
    ),
    totals: prepare<{ metric: string; window_end: number; total: number }>(
      db,
      'SELECT metric, window_end, total FROM usage_totals WHERE customer_id = ? ORDER BY window_end DESC, metric',
    ),
    addResourceTotal: prepare(
      db,
      `INSERT INTO usage_resource_totals (customer_id, metric, window_end, resource, total) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (customer_id, metric, window_end, resource) DO UPDATE SET total = total + excluded.total`,
    ),
    // The most used first: what a token's snapshot carries when it cannot carry every resource.
    resourceTotals: prepare<{ resource: string; total: number }>(
      db,
      `SELECT resource, total FROM usage_resource_totals WHERE customer_id = ? AND metric = ? AND window_end = ?
       ORDER BY total DESC, resource LIMIT ?`,
    ),
    resourceUsage: prepare<{ metric: string; window_end: number; resource: string; total: number }>(
      db,
      `SELECT metric, window_end, resource, total FROM usage_resource_totals WHERE customer_id = ?
       ORDER BY window_end DESC, metric, resource`,
    ),
    // The primary key is the deduplication: a crossing already recorded changes nothing.
    insertAlert: prepare(
      db,
      `INSERT INTO usage_alerts (customer_id, metric, window_end, threshold, cap_limit, total, crossed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (customer_id, metric, window_end, threshold) DO NOTHING`,
    ),
    alerts: prepare<UsageAlertRow>(
      db,
      `SELECT metric, window_end, threshold, cap_limit, total, crossed_at FROM usage_alerts
       WHERE customer_id = ? ORDER BY window_end DESC, metric, threshold`,
    ),
  }
  return {
    total: (customerId: string, metric: string, windowEnd: number) =>
      q.total.get(customerId, metric, windowEnd)?.total ?? 0,
    /** Stores a line; `false` when this customer sent this id before. */
    insertLine: (l: {
      id: string
      customerId: string
      metric: string
      amount: number
      start: number
      end: number
      windowEnd: number
      batch: string | null
      at: number
      resource: string | null
    }) =>
      q.insertLine.run(
        l.id,
        l.customerId,
        l.metric,
        l.amount,
        l.start,
        l.end,
        l.windowEnd,
        l.batch,
        l.at,
        l.resource,
      ).changes === 1,
    addResourceTotal: (
      customerId: string,
      metric: string,
      windowEnd: number,
      resource: string,
      amount: number,
    ) => void q.addResourceTotal.run(customerId, metric, windowEnd, resource, amount),
    /** The `limit` most used resources of a metric in a window. */
    resourceTotals: (customerId: string, metric: string, windowEnd: number, limit: number) =>
      q.resourceTotals.all(customerId, metric, windowEnd, limit),
    /** Every resource's totals of a customer, newest window first. */
    resourceUsage: (customerId: string) => q.resourceUsage.all(customerId),
    addTotal: (customerId: string, metric: string, windowEnd: number, amount: number) =>
      void q.addTotal.run(customerId, metric, windowEnd, amount),
    usage: (customerId: string) => q.totals.all(customerId),
    /** Records a threshold crossing; `false` when this one was recorded before. */
    insertAlert: (customerId: string, alert: Omit<UsageAlertRow, 'crossed_at'>, at: number) =>
      q.insertAlert.run(
        customerId,
        alert.metric,
        alert.window_end,
        alert.threshold,
        alert.cap_limit,
        alert.total,
        at,
      ).changes === 1,
    /** A customer's threshold crossings, newest window first. */
    alerts: (customerId: string) => q.alerts.all(customerId),
  }
}

function accessRequests(db: Db) {
  const q = {
    grants: prepare<{ feature: string }>(
      db,
      'SELECT feature FROM grants WHERE customer_id = ? ORDER BY feature',
    ),
    insertGrant: prepare(
      db,
      'INSERT OR IGNORE INTO grants (customer_id, feature, request_id, created_at) VALUES (?, ?, ?, ?)',
    ),
    pending: prepare<{ id: string }>(
      db,
      "SELECT id FROM access_requests WHERE customer_id = ? AND feature = ? AND status = 'pending'",
    ),
    insert: prepare(
      db,
      `INSERT INTO access_requests (id, customer_id, feature, requested_by, note, status, created_at)
       VALUES (?, ?, ?, ?, ?, 'pending', ?)`,
    ),
    list: prepare<AccessRequestRow>(
      db,
      `SELECT id, customer_id AS customerId, feature, requested_by AS requestedBy, note, status, decided_by AS decidedBy
       FROM access_requests WHERE (? IS NULL OR status = ?) ORDER BY created_at, id`,
    ),
    request: prepare<{ customer_id: string; feature: string; status: string }>(
      db,
      'SELECT customer_id, feature, status FROM access_requests WHERE id = ?',
    ),
    decide: prepare(db, 'UPDATE access_requests SET status = ?, decided_by = ?, decided_at = ? WHERE id = ?'),
  }
  return {
    grants: (customerId: string) => q.grants.all(customerId).map((row) => row.feature),
    insertGrant: (customerId: string, feature: string, requestId: string, at: number) =>
      void q.insertGrant.run(customerId, feature, requestId, at),
    pendingRequest: (customerId: string, feature: string) => q.pending.get(customerId, feature)?.id,
    insertRequest: (r: {
      id: string
      customerId: string
      feature: string
      requestedBy: string
      note: string | null
      at: number
    }) => void q.insert.run(r.id, r.customerId, r.feature, r.requestedBy, r.note, r.at),
    requests: (status: string | null) => q.list.all(status, status),
    request: (id: string) => q.request.get(id),
    decideRequest: (id: string, status: 'approved' | 'denied', by: string, at: number) =>
      void q.decide.run(status, by, at, id),
  }
}

function trials(db: Db) {
  const q = {
    insert: prepare(db, 'INSERT INTO trials (customer_id, sku, started_at) VALUES (?, ?, ?)'),
    count: prepare<{ taken: number }>(
      db,
      'SELECT COUNT(*) AS taken FROM trials WHERE customer_id = ? AND sku = ?',
    ),
  }
  return {
    recordTrial: (customerId: string, sku: string, at: number) => void q.insert.run(customerId, sku, at),
    /** How many trials of `sku` the customer has taken, cancelled or not. */
    trialsTaken: (customerId: string, sku: string) => q.count.get(customerId, sku)?.taken ?? 0,
  }
}

function leases(db: Db) {
  const q = {
    byId: prepare<LeaseRow>(db, 'SELECT * FROM leases WHERE id = ?'),
    // Live and still ahead of `now`: what holds a seat. Expired rows stay for revival and for the admin's view.
    live: prepare<LeaseRow>(
      db,
      `SELECT * FROM leases WHERE customer_id = ? AND pool = ? AND state = 'live' AND expires_at > ?
       ORDER BY acquired_at`,
    ),
    liveOf: prepare<LeaseRow>(
      db,
      `SELECT * FROM leases WHERE customer_id = ? AND (? IS NULL OR pool = ?) AND state = 'live' AND expires_at > ?
       ORDER BY pool, acquired_at`,
    ),
    lapsed: prepare<LeaseRow>(
      db,
      `SELECT * FROM leases WHERE state = 'live' AND expires_at <= ? AND (? IS NULL OR (customer_id = ? AND pool = ?))`,
    ),
    insert: prepare(
      db,
      `INSERT INTO leases (id, customer_id, pool, holder, metadata, borrowed, acquired_at, heartbeat_at, expires_at, state)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'live')`,
    ),
    extend: prepare(
      db,
      `UPDATE leases SET state = 'live', heartbeat_at = ?, expires_at = ?, ended_at = NULL WHERE id = ?`,
    ),
    end: prepare(db, 'UPDATE leases SET state = ?, ended_at = ? WHERE id = ?'),
  }
  return {
    lease: (id: string) => q.byId.get(id),
    /** The leases holding a seat of a pool at `now`, oldest first. */
    liveLeases: (customerId: string, pool: string, now: number) => q.live.all(customerId, pool, now),
    /** A customer's live leases, of one pool or all. */
    customerLeases: (customerId: string, pool: string | null, now: number) =>
      q.liveOf.all(customerId, pool, pool, now),
    /** Leases still marked live whose time ran out: of one pool, or every customer's (`null`). */
    lapsedLeases: (now: number, scope: { customerId: string; pool: string } | null) =>
      q.lapsed.all(now, scope?.customerId ?? null, scope?.customerId ?? null, scope?.pool ?? null),
    insertLease: (row: Omit<LeaseRow, 'state' | 'ended_at'>) =>
      void q.insert.run(
        row.id,
        row.customer_id,
        row.pool,
        row.holder,
        row.metadata,
        row.borrowed,
        row.acquired_at,
        row.heartbeat_at,
        row.expires_at,
      ),
    extendLease: (id: string, at: number, expiresAt: number) => void q.extend.run(at, expiresAt, id),
    endLease: (id: string, state: 'expired' | 'released', at: number) => void q.end.run(state, at, id),
  }
}

function events(db: Db) {
  const q = {
    insert: prepare(db, 'INSERT INTO events (type, customer_id, at, data) VALUES (?, ?, ?, ?)'),
    // Filtered by customer before the limit: a busy neighbour cannot push a customer's own events out of a replay.
    since: prepare<EventRow>(
      db,
      `SELECT id, type, customer_id AS customerId, data FROM events
       WHERE id > ? AND (? IS NULL OR customer_id = ?) ORDER BY id LIMIT ?`,
    ),
    last: prepare<{ id: number | null }>(db, 'SELECT MAX(id) AS id FROM events'),
  }
  return {
    insertEvent: (type: EventRow['type'], customerId: string | null, at: number, data: string | null) =>
      Number(q.insert.run(type, customerId, at, data).lastInsertRowid),
    /** Events after `afterId`: every customer's (`null`), or one's; the oldest `limit`. */
    eventsSince: (afterId: number, customerId: string | null, limit: number) =>
      q.since.all(afterId, customerId, customerId, limit),
    /** The id of the newest event, 0 when there is none. */
    lastEventId: () => q.last.get()?.id ?? 0,
  }
}

/**
 * Every SQL statement of the server, each prepared once when the server starts (not on every call), behind
 * functions that say what they read or change, grouped by table. Nothing else in the server writes SQL, but the
 * keyring and the migrations.
 */
export function createRepository(db: Db) {
  return {
    ...customers(db),
    ...licenses(db),
    ...orders(db),
    ...devices(db),
    ...tokens(db),
    ...usage(db),
    ...accessRequests(db),
    ...events(db),
    ...trials(db),
    ...leases(db),
    ...creditLedger(db),
    /** Runs `work` in one SQLite transaction (nested calls are savepoints). */
    transaction: <T>(work: () => T): T => db.transaction(work)(),
    /**
     * Runs `work` in a transaction that takes the write lock first (`BEGIN IMMEDIATE`): what it counts cannot
     * change under it, even from another process on the same database file.
     */
    immediate: <T>(work: () => T): T => db.transaction(work).immediate(),
  }
}

export type Repository = ReturnType<typeof createRepository>
