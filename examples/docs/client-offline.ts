// A desktop or on-prem app with an offline license from the reference license server: `POST /v1/offline-licenses`
// with the license key and this machine's fingerprint gives the token (valid to the end of the term and its grace);
// the server's public keys (its /.well-known/jwks.json) ship with the app.
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { createEntitlements } from 'entitle'
import { createFileStorage, tokenFromFile } from 'entitle/node'

const LICENSE_FILE = process.env.LICENSE_FILE ?? 'license.jwt'
const TRUSTED_KEYS = JSON.parse(readFileSync(process.env.LICENSE_KEYS ?? 'jwks.json', 'utf8'))
const DEVICE = process.env.DEVICE_ID ?? hostname()

// Its own license file, no server, and a clock that cannot be turned back.
export const license = createEntitlements({
  token: tokenFromFile(LICENSE_FILE),
  keys: TRUSTED_KEYS,
  issuer: process.env.LICENSE_ISSUER ?? 'http://127.0.0.1:8787',
  audience: 'acme-editor',
  storage: createFileStorage(process.env.ENTITLE_STATE_DIR ?? '.entitle'),
})

export async function exportAllowed(): Promise<string> {
  const decision = await license.check('export', { device: DEVICE })
  return decision.allowed ? 'export enabled' : `export unavailable: ${decision.reason}`
}
