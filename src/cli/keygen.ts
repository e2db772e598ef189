import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { calculateJwkThumbprint, exportJWK, exportPKCS8, exportSPKI, generateKeyPair } from 'jose'
import { CliError, EXIT, writeText } from './io.js'

export const KEYGEN_HELP = `entitle keygen: make a signing key pair for entitlement tokens

Usage: entitle keygen [--alg EdDSA|ES256] [--kid ID] [--out DIR] [--force]

Writes to DIR (default: the current folder):
  entitle-private.jwk.json, entitle-private.pem   the private key (mode 0600): keep it on the issuer only
  entitle-public.jwk.json, entitle-public.pem     the public key
  jwks.json                                       the public JWK Set apps trust
and prints the public JWK Set.

  --alg    EdDSA (Ed25519, the default) or ES256 (P-256)
  --kid    key id; default: the key's RFC 7638 thumbprint
  --out    folder to write to
  --force  overwrite existing files`

export interface KeygenOptions {
  alg?: string
  kid?: string
  out?: string
  force?: boolean
}

export async function keygen(options: KeygenOptions): Promise<string> {
  const alg = options.alg ?? 'EdDSA'
  if (alg !== 'EdDSA' && alg !== 'ES256')
    throw new CliError(`--alg must be EdDSA or ES256 (got ${alg})`, EXIT.usage)
  const dir = options.out ?? '.'
  const files = [
    'entitle-private.jwk.json',
    'entitle-private.pem',
    'entitle-public.jwk.json',
    'entitle-public.pem',
    'jwks.json',
  ]
  const existing = files.filter((file) => existsSync(join(dir, file)))
  if (existing.length > 0 && !options.force) {
    throw new CliError(
      `refusing to overwrite ${existing.join(', ')} in ${dir} (use --force)`,
      EXIT.input,
      'file_exists',
    )
  }
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
  const publicJwk = await exportJWK(publicKey)
  const kid = options.kid ?? (await calculateJwkThumbprint(publicJwk))
  const publicEntry = { ...publicJwk, kid, alg, use: 'sig' }
  const privateEntry = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' }
  const jwks = { keys: [publicEntry] }

  const secret = { mode: 0o600 }
  writeText(join(dir, 'entitle-private.jwk.json'), `${JSON.stringify(privateEntry, null, 2)}\n`, secret)
  writeText(join(dir, 'entitle-private.pem'), await exportPKCS8(privateKey), secret)
  writeText(join(dir, 'entitle-public.jwk.json'), `${JSON.stringify(publicEntry, null, 2)}\n`)
  writeText(join(dir, 'entitle-public.pem'), await exportSPKI(publicKey))
  writeText(join(dir, 'jwks.json'), `${JSON.stringify(jwks, null, 2)}\n`)
  return `${JSON.stringify(jwks, null, 2)}\n`
}
