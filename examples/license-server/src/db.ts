import { chmodSync, existsSync } from 'node:fs'
import Database from 'better-sqlite3'

export type Db = Database.Database

/**
 * Schema migrations, applied in order at start-up, each in its own transaction, and recorded in
 * `schema_migrations`. Append; never edit one that has shipped.
 */
const MIGRATIONS: ReadonlyArray<string | ((db: Db) => void)> = [
  `
  CREATE TABLE customers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    api_key_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE licenses (
    customer_id TEXT PRIMARY KEY REFERENCES customers(id),
    license_key_hash TEXT NOT NULL UNIQUE,
    sku TEXT NOT NULL,
    seats INTEGER NOT NULL,
    addons TEXT NOT NULL,
    term_start INTEGER NOT NULL,
    term_end INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('active', 'cancelled', 'revoked')),
    version INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE orders (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    body_hash TEXT NOT NULL,
    status INTEGER NOT NULL,
    response TEXT NOT NULL,
    received_at INTEGER NOT NULL
  );
  CREATE TABLE order_signatures (
    signature TEXT PRIMARY KEY,
    seen_at INTEGER NOT NULL
  );
  CREATE TABLE devices (
    customer_id TEXT NOT NULL REFERENCES customers(id),
    fingerprint TEXT NOT NULL,
    activated_at INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    PRIMARY KEY (customer_id, fingerprint)
  );
  CREATE TABLE tokens (
    jti TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    device TEXT,
    kind TEXT NOT NULL CHECK (kind IN ('online', 'device', 'offline')),
    license_version INTEGER NOT NULL,
    issued_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    token TEXT NOT NULL
  );
  CREATE INDEX tokens_by_customer ON tokens (customer_id, kind, device, issued_at);
  CREATE TABLE revocations (
    jti TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL,
    revoked_at INTEGER NOT NULL
  );
  CREATE TABLE usage_lines (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    metric TEXT NOT NULL,
    amount REAL NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    batch TEXT,
    received_at INTEGER NOT NULL
  );
  CREATE TABLE usage_totals (
    customer_id TEXT NOT NULL REFERENCES customers(id),
    metric TEXT NOT NULL,
    window_end INTEGER NOT NULL,
    total REAL NOT NULL,
    PRIMARY KEY (customer_id, metric, window_end)
  );
  CREATE TABLE access_requests (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    feature TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    note TEXT,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied')),
    decided_by TEXT,
    decided_at INTEGER,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE grants (
    customer_id TEXT NOT NULL REFERENCES customers(id),
    feature TEXT NOT NULL,
    request_id TEXT,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (customer_id, feature)
  );
  CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY,
    private_jwk TEXT NOT NULL,
    public_jwk TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER
  );
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    type TEXT NOT NULL,
    customer_id TEXT,
    at INTEGER NOT NULL
  );
  `,
  // When usage was last stored for a license: a held token whose snapshot is older is not handed out again, so a
  // client that restarts learns what the server counted (the ETag covers the usage, not only the license).
  `
  ALTER TABLE licenses ADD COLUMN usage_at INTEGER NOT NULL DEFAULT 0;
  `,
  // Line ids are the SDK's, unique per customer, not across customers: customer B's line is never "a duplicate"
  // of an id customer A used first.
  `
  CREATE TABLE usage_lines_by_customer (
    customer_id TEXT NOT NULL REFERENCES customers(id),
    id TEXT NOT NULL,
    metric TEXT NOT NULL,
    amount REAL NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    batch TEXT,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (customer_id, id)
  );
  INSERT INTO usage_lines_by_customer (customer_id, id, metric, amount, start, end, window_end, batch, received_at)
    SELECT customer_id, id, metric, amount, start, end, window_end, batch, received_at FROM usage_lines;
  DROP TABLE usage_lines;
  ALTER TABLE usage_lines_by_customer RENAME TO usage_lines;
  `,
  // Trials; seats held by offline licenses; keys published before they sign; which key signed each token, so a
  // key stays published while anything it signed lives; replay filtered by customer before its limit.
  (db) => {
    db.exec(`
      ALTER TABLE licenses ADD COLUMN trial_end INTEGER;
      ALTER TABLE devices ADD COLUMN offline_until INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE tokens ADD COLUMN kid TEXT;
      CREATE INDEX tokens_by_kid ON tokens (kid, expires_at);
      CREATE INDEX events_by_customer ON events (customer_id, id);
      UPDATE devices SET offline_until = COALESCE((
        SELECT MAX(t.expires_at) FROM tokens t
        WHERE t.customer_id = devices.customer_id AND t.device = devices.fingerprint AND t.kind = 'offline'
          AND t.jti NOT IN (SELECT jti FROM revocations)), 0);
    `)
    const setKid = db.prepare('UPDATE tokens SET kid = ? WHERE jti = ?')
    for (const row of db.prepare('SELECT jti, token FROM tokens').all() as Array<{
      jti: string
      token: string
    }>) {
      const header = JSON.parse(Buffer.from(row.token.split('.')[0] ?? '', 'base64url').toString()) as {
        kid?: string
      }
      setKid.run(header.kid ?? null, row.jti)
    }
  },
  // Trials taken, per customer and plan: remembered across cancellations, so a trial cannot be bought again and
  // again. Licenses that are or were in a trial count as one each.
  `
  CREATE TABLE trials (
    customer_id TEXT NOT NULL REFERENCES customers(id),
    sku TEXT NOT NULL,
    started_at INTEGER NOT NULL
  );
  CREATE INDEX trials_by_customer ON trials (customer_id, sku);
  INSERT INTO trials (customer_id, sku, started_at)
    SELECT customer_id, sku, term_start FROM licenses WHERE trial_end IS NOT NULL;
  `,
  // Usage alerts: each threshold of a cap crossed once per customer, metric and window, whatever number of
  // instances reported the usage (the primary key is the deduplication); events carry what they are about.
  `
  CREATE TABLE usage_alerts (
    customer_id TEXT NOT NULL REFERENCES customers(id),
    metric TEXT NOT NULL,
    window_end INTEGER NOT NULL,
    threshold INTEGER NOT NULL,
    cap_limit REAL NOT NULL,
    total REAL NOT NULL,
    crossed_at INTEGER NOT NULL,
    PRIMARY KEY (customer_id, metric, window_end, threshold)
  );
  ALTER TABLE events ADD COLUMN data TEXT;
  `,
  // Usage per resource (a workspace, a repository) beside the account's: the line keeps its resource, and each
  // resource's total per metric and window is what a per-resource cap's token snapshot carries.
  `
  ALTER TABLE usage_lines ADD COLUMN resource TEXT;
  CREATE TABLE usage_resource_totals (
    customer_id TEXT NOT NULL REFERENCES customers(id),
    metric TEXT NOT NULL,
    window_end INTEGER NOT NULL,
    resource TEXT NOT NULL,
    total REAL NOT NULL,
    PRIMARY KEY (customer_id, metric, window_end, resource)
  );
  `,
  // Floating-license leases: one row per lease for its whole life (renewals move expires_at; the id stays), so an
  // expired lease can be revived by its holder and an admin can see who held what. A live lease holds a seat while
  // expires_at is ahead; nothing needs a job to free it.
  `
  CREATE TABLE leases (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    pool TEXT NOT NULL,
    holder TEXT NOT NULL,
    metadata TEXT,
    borrowed INTEGER NOT NULL DEFAULT 0,
    acquired_at INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('live', 'expired', 'released')),
    ended_at INTEGER
  );
  CREATE INDEX leases_by_pool ON leases (customer_id, pool, state, expires_at);
  CREATE INDEX leases_live ON leases (state, expires_at);
  `,
  // Credits: a ledger of grants and burns. A grant's balance at any moment is its amount less its burns up to then;
  // past its expiry (or its voiding) it is worth nothing, read as such, with no job to run first. A burn with no
  // grant is an overdraft. Burns name the usage line that caused them: a line burns once, in its transaction.
  `
  CREATE TABLE credit_grants (
    id TEXT PRIMARY KEY,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    type TEXT NOT NULL,
    amount REAL NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    category TEXT NOT NULL CHECK (category IN ('promotional', 'allowance', 'paid')),
    starts_at INTEGER,
    expires_at INTEGER,
    source TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    voided_at INTEGER,
    expiry_announced INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX credit_grants_by_customer ON credit_grants (customer_id, type);
  CREATE INDEX credit_grants_by_end ON credit_grants (expiry_announced, expires_at);
  CREATE TABLE credit_burns (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id TEXT NOT NULL REFERENCES customers(id),
    type TEXT NOT NULL,
    grant_id TEXT REFERENCES credit_grants(id),
    amount REAL NOT NULL,
    line_id TEXT NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE INDEX credit_burns_by_customer ON credit_burns (customer_id, type, at);
  CREATE INDEX credit_burns_by_grant ON credit_burns (grant_id, at);
  `,
]

/** Opens (or creates) the database at `path` (`:memory:` for tests) and brings its schema up to date. */
export function openDatabase(path: string): Db {
  const db = new Database(path)
  if (path !== ':memory:') {
    db.pragma('journal_mode = WAL')
    // The file holds the private signing keys: readable by this user only, like the secrets file.
    for (const file of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(file)) chmodSync(file, 0o600)
  }
  db.pragma('foreign_keys = ON')
  db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)',
  )
  const applied =
    (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0
  MIGRATIONS.forEach((sql, index) => {
    const version = index + 1
    if (version <= applied) return
    db.transaction(() => {
      if (typeof sql === 'string') db.exec(sql)
      else sql(db)
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, Date.now())
    })()
  })
  return db
}

/** A statement prepared once, with its rows typed. */
export function prepare<Row = unknown>(db: Db, text: string) {
  const statement = db.prepare(text)
  return {
    get: (...params: unknown[]) => statement.get(...params) as Row | undefined,
    all: (...params: unknown[]) => statement.all(...params) as Row[],
    run: (...params: unknown[]) => statement.run(...params),
  }
}
