import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

/** HMAC and bearer keys shorter than this are refused: 256 bits, what SHA-256 gives an attacker to guess. */
export const MIN_SECRET_BYTES = 32
const MAKE_ONE = `node -e "console.log(require('node:crypto').randomBytes(32).toString('base64url'))"`

/** Throws, saying how to make one, unless `value` is a secret of at least 32 bytes. */
export function assertSecret(name: string, value: string | undefined): asserts value is string {
  const bytes = value === undefined ? 0 : Buffer.byteLength(value)
  if (bytes >= MIN_SECRET_BYTES) return
  const what = value === undefined ? 'is not set' : value === '' ? 'is empty' : `is ${bytes} bytes`
  throw new Error(
    `${name} ${what}: it must be at least ${MIN_SECRET_BYTES} bytes of secret. Make one with\n  ${MAKE_ONE}`,
  )
}

/** The three secrets of the server, by their environment names. */
export const SECRET_NAMES = ['ENTITLE_ADMIN_KEY', 'ENTITLE_ORDER_SECRET', 'ENTITLE_SERVICE_KEY'] as const
type SecretName = (typeof SECRET_NAMES)[number]

/** Reads a `.env`-style file: `NAME=value` lines, `#` comments. */
function readEnvFile(path: string): Map<string, string> {
  const values = new Map<string, string>()
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const match = /^\s*([A-Z_][A-Z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line)
    if (match) values.set(match[1]!, match[2]!)
  }
  return values
}

export interface LoadedSecrets {
  adminKey: string
  orderSecret: string
  serviceKey: string
  /** The secrets file, whether it was just made, and which names came from the environment instead. */
  file: string
  created: boolean
  fromEnvironment: SecretName[]
}

/**
 * The server's secrets: each from the environment when set there, else from `secrets.env` in `dir`, which is made
 * once (mode 0600, new random secrets) when a secret is not in the environment, and reused on every start after. Any secret shorter than 32 bytes, from
 * either place, stops the server with a message that says how to make one.
 */
export function loadSecrets(dir: string, env: NodeJS.ProcessEnv = process.env): LoadedSecrets {
  const file = join(dir, 'secrets.env')
  let created = false
  const needed = SECRET_NAMES.some((name) => env[name] === undefined)
  if (needed && !existsSync(file)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const lines = [
      "# The reference license server's secrets, made on its first start. Keep this file private (mode 0600).",
      '# A variable of the same name in the environment wins over the value here.',
      ...SECRET_NAMES.map((name) => `${name}=${randomBytes(32).toString('base64url')}`),
    ]
    writeFileSync(file, `${lines.join('\n')}\n`, { mode: 0o600, flag: 'wx' })
    created = true
  } else if (existsSync(file) && (statSync(file).mode & 0o077) !== 0) {
    console.warn(`warning: ${file} can be read by other users; chmod 600 it`)
  }
  const stored = existsSync(file) ? readEnvFile(file) : new Map<string, string>()
  const fromEnvironment: SecretName[] = []
  const value = (name: SecretName): string => {
    const set = env[name]
    if (set !== undefined) fromEnvironment.push(name)
    const chosen = set ?? stored.get(name)
    assertSecret(set !== undefined ? name : `${name} in ${file}`, chosen)
    return chosen
  }
  return {
    adminKey: value('ENTITLE_ADMIN_KEY'),
    orderSecret: value('ENTITLE_ORDER_SECRET'),
    serviceKey: value('ENTITLE_SERVICE_KEY'),
    file,
    created,
    fromEnvironment,
  }
}
