import { createPrivateKey } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { importJWK, importPKCS8, type JWK } from 'jose'
import type { Algorithm, KeySource } from '../core/keys.js'

/** A failure the command line reports with a message and an exit code, never a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code?: string,
  ) {
    super(message)
  }
}

/** Exit codes: documented in docs/cli.md. */
export const EXIT = { ok: 0, problems: 1, usage: 2, input: 3, bug: 70 } as const

/** Writes a file the command makes; a folder that cannot be made or written is exit 3, naming the path and why. */
export function writeText(path: string, text: string, options: { mode?: number } = {}): void {
  try {
    mkdirSync(dirname(path), { recursive: true })
    writeFileSync(path, text, options)
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unwritable'
    throw new CliError(`cannot write ${path}: ${reason}`, EXIT.input, 'file_unwritable')
  }
}

export function readText(path: string, what: string): string {
  try {
    return path === '-' ? readFileSync(0, 'utf8') : readFileSync(path, 'utf8')
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable'
    throw new CliError(`cannot read ${what} ${path}: ${reason}`, EXIT.input, 'file_unreadable')
  }
}

export function readJson(path: string, what: string): unknown {
  const text = readText(path, what)
  try {
    return JSON.parse(text)
  } catch {
    throw new CliError(`${what} ${path} is not valid JSON`, EXIT.input, 'file_invalid')
  }
}

/** The JWS algorithm a private key signs with, from its type and curve. */
function algorithmOf(kty: string | undefined, crv: string | undefined): Algorithm {
  if (kty === 'OKP' && crv === 'Ed25519') return 'EdDSA'
  if (kty === 'EC' && crv === 'P-256') return 'ES256'
  if (kty === 'EC' && crv === 'P-384') return 'ES384'
  if (kty === 'RSA') return 'RS256'
  throw new CliError(
    `unsupported signing key (${kty ?? '?'} ${crv ?? ''}); use Ed25519 or P-256`,
    EXIT.input,
    'key_invalid',
  )
}

export interface SigningKey {
  key: CryptoKey
  alg: Algorithm
  kid: string | undefined
}

/** Loads a private key from a JWK file (with `d`) or a PKCS#8 PEM file. */
export async function loadSigningKey(path: string, alg?: Algorithm, kid?: string): Promise<SigningKey> {
  const text = readText(path, 'key file').trim()
  if (/^-----BEGIN (RSA )?PUBLIC KEY-----/.test(text) || /^-----BEGIN CERTIFICATE-----/.test(text))
    throw new CliError(
      `${path} is a public key: signing needs the private key (entitle keygen wrote it as entitle-private.*)`,
      EXIT.input,
      'key_invalid',
    )
  try {
    if (text.startsWith('-----BEGIN PRIVATE KEY-----')) {
      const details = createPrivateKey(text).export({ format: 'jwk' }) as JWK
      const algorithm = alg ?? algorithmOf(details.kty, details.crv)
      return { key: await importPKCS8(text, algorithm), alg: algorithm, kid }
    }
    const jwk = JSON.parse(text) as JWK & { keys?: unknown }
    if (
      typeof jwk === 'object' &&
      jwk !== null &&
      (Array.isArray(jwk.keys) || (jwk.x !== undefined && jwk.d === undefined))
    )
      throw new CliError(
        `${path} holds public keys: signing needs the private key (entitle keygen wrote it as entitle-private.*)`,
        EXIT.input,
        'key_invalid',
      )
    if (typeof jwk !== 'object' || jwk === null || typeof jwk.d !== 'string') {
      throw new CliError(
        `${path} is not a private key (a JWK with "d", or a PKCS#8 PEM)`,
        EXIT.input,
        'key_invalid',
      )
    }
    const algorithm = alg ?? (jwk.alg as Algorithm | undefined) ?? algorithmOf(jwk.kty, jwk.crv)
    return { key: (await importJWK(jwk, algorithm)) as CryptoKey, alg: algorithm, kid: kid ?? jwk.kid }
  } catch (error) {
    if (error instanceof CliError) throw error
    throw new CliError(
      `${path} is not a usable private key: ${(error as Error).message}`,
      EXIT.input,
      'key_invalid',
    )
  }
}

/** Loads trusted public keys for verification: a URL, a PEM, a JWK or a JWK Set file. */
export function loadVerificationKeys(source: string): KeySource {
  if (/^https?:\/\//.test(source)) return new URL(source)
  const text = readText(source, 'key file').trim()
  if (text.startsWith('-----BEGIN')) return text
  try {
    return JSON.parse(text) as KeySource
  } catch {
    throw new CliError(`${source} is neither a PEM nor a JSON JWK / JWK Set`, EXIT.input, 'key_invalid')
  }
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: 31_536_000 }

/** `30d`, `12h`, `1y` → seconds. */
export function parseDuration(value: string, flag: string): number {
  const match = /^(\d+)([smhdwy])$/.exec(value)
  if (!match) throw new CliError(`${flag} must be a duration like 30d, 12h or 1y (got ${value})`, EXIT.usage)
  return Number(match[1]) * UNITS[match[2]!]!
}

/** An ISO date, or a duration from `nowSec`, → seconds since the epoch. */
export function parseMoment(value: string, flag: string, nowSec: number): number {
  if (/^\d+[smhdwy]$/.test(value)) return nowSec + parseDuration(value, flag)
  const ms = Date.parse(value)
  if (Number.isNaN(ms))
    throw new CliError(`${flag} must be an ISO date or a duration like 14d (got ${value})`, EXIT.usage)
  return Math.floor(ms / 1000)
}
