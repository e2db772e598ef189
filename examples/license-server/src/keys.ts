import { randomBytes } from 'node:crypto'
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import type { Db } from './db.js'

interface KeyRow {
  kid: string
  private_jwk: string
  public_jwk: string
  activates_at: number
}

export interface KeyringOptions {
  /**
   * A rotated key is published this long before it signs, so every verifier that caches the JWK Set (the server
   * sends `max-age=300`) has it before the first token it signs arrives. Default 600 s: twice the cache age.
   */
  prePublishSec?: number
  /** A key leaves the JWK Set this long after the last token it signed expired (clock skew). Default 300 s. */
  retireAfterSec?: number
}

/**
 * The server's Ed25519 signing keys, kept in the database (a KMS in production: see docs/server.md).
 *
 * - A rotated key is **published first and signs later** (`prePublishSec`): no verifier meets a token signed by a
 *   key it could not yet have fetched.
 * - The newest key whose time has come signs.
 * - A key **stays in the JWK Set while any token it signed lives**, a year-long offline license included, and
 *   leaves it after (tokens record their `kid`).
 */
export function createKeyring(db: Db, now: () => number, options: KeyringOptions = {}) {
  const prePublishMs = (options.prePublishSec ?? 600) * 1000
  const retireAfterMs = (options.retireAfterSec ?? 300) * 1000
  const signers = new Map<string, CryptoKey>()
  const q = {
    insert: db.prepare(
      'INSERT INTO signing_keys (kid, private_jwk, public_jwk, created_at, activates_at) VALUES (?, ?, ?, ?, ?)',
    ),
    signing: db.prepare(
      `SELECT kid, private_jwk, public_jwk, activates_at FROM signing_keys WHERE activates_at <= ?
       ORDER BY activates_at DESC, created_at DESC, rowid DESC LIMIT 1`,
    ),
    // Pending keys, the key that signs, and every key a live token was signed with.
    published: db.prepare(
      `SELECT kid, private_jwk, public_jwk, activates_at FROM signing_keys k
       WHERE k.activates_at > ? OR k.kid = ?
          OR EXISTS (SELECT 1 FROM tokens t WHERE t.kid = k.kid AND t.expires_at > ?)
       ORDER BY activates_at DESC, created_at DESC, rowid DESC`,
    ),
    count: db.prepare('SELECT COUNT(*) AS n FROM signing_keys'),
  }

  function signingRow(at: number): KeyRow | undefined {
    return q.signing.get(at) as KeyRow | undefined
  }

  /** Makes a key that signs from `activatesAt` on; returns its `kid`. */
  async function create(activatesAt: number): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair('Ed25519', { extractable: true })
    const kid = `k${new Date(now()).toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(4).toString('hex')}`
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' }
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA' }
    q.insert.run(kid, JSON.stringify(privateJwk), JSON.stringify(publicJwk), now(), activatesAt)
    return kid
  }

  return {
    /** Makes the first key on first start: it signs at once, since nothing can have cached an older set. */
    async ensure(): Promise<void> {
      if ((q.count.get() as { n: number }).n === 0) await create(now())
    },

    /**
     * A new signing key, published now and signing after `prePublishSec` (`immediate`: at once, for a key that
     * must stop signing now; verifiers that cached the set refetch on the unknown `kid`, the SDK at once).
     */
    async rotate(rotation: { immediate?: boolean } = {}): Promise<{ kid: string; signsFrom: number }> {
      const signsFrom = rotation.immediate ? now() : now() + prePublishMs
      return { kid: await create(signsFrom), signsFrom }
    },

    jwks(): { keys: JWK[] } {
      const at = now()
      const signer = signingRow(at)?.kid ?? null
      const rows = q.published.all(at, signer, at - retireAfterMs) as KeyRow[]
      return { keys: rows.map((row) => JSON.parse(row.public_jwk) as JWK) }
    },

    /** The key that signs now, imported once. */
    async signer(): Promise<{ kid: string; key: CryptoKey }> {
      const row = signingRow(now())
      if (row === undefined) throw new Error('no signing key: call ensure() first')
      let key = signers.get(row.kid)
      if (key === undefined) {
        key = (await importJWK(JSON.parse(row.private_jwk) as JWK, 'EdDSA')) as CryptoKey
        signers.set(row.kid, key)
      }
      return { kid: row.kid, key }
    },
  }
}

export type Keyring = ReturnType<typeof createKeyring>
