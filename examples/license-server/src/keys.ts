import { randomBytes } from 'node:crypto'
import { exportJWK, generateKeyPair, importJWK, type JWK } from 'jose'
import type { Db } from './db.js'

interface KeyRow {
  kid: string
  private_jwk: string
  public_jwk: string
}

/**
 * The server's Ed25519 signing keys, kept in the database (a KMS in production: see docs/server.md). The newest
 * signs; the JWK Set serves it and the one before, so tokens signed just before a rotation still verify.
 */
export function createKeyring(db: Db, now: () => number) {
  const signers = new Map<string, CryptoKey>()
  const newest = () =>
    db
      .prepare(
        'SELECT kid, private_jwk, public_jwk FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC, rowid DESC LIMIT 2',
      )
      .all() as KeyRow[]

  async function rotate(): Promise<string> {
    const { privateKey, publicKey } = await generateKeyPair('Ed25519', { extractable: true })
    const kid = `k${new Date(now()).toISOString().slice(0, 10).replaceAll('-', '')}-${randomBytes(4).toString('hex')}`
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'EdDSA', use: 'sig' }
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'EdDSA' }
    db.transaction(() => {
      db.prepare(
        'INSERT INTO signing_keys (kid, private_jwk, public_jwk, created_at) VALUES (?, ?, ?, ?)',
      ).run(kid, JSON.stringify(privateJwk), JSON.stringify(publicJwk), now())
      // Keep two keys published: the new one and the one tokens in circulation were signed with.
      const keep = newest().map((row) => row.kid)
      db.prepare(
        `UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL AND kid NOT IN (${keep.map(() => '?').join(',')})`,
      ).run(now(), ...keep)
    })()
    return kid
  }

  return {
    rotate,
    /** Makes the first key on first start. */
    async ensure(): Promise<void> {
      if (newest().length === 0) await rotate()
    },
    jwks(): { keys: JWK[] } {
      return { keys: newest().map((row) => JSON.parse(row.public_jwk) as JWK) }
    },
    /** The key that signs now, imported once. */
    async signer(): Promise<{ kid: string; key: CryptoKey }> {
      const row = newest()[0]
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
