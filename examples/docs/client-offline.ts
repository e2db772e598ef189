import { createEntitlements } from 'entitle'
import { createFileStorage, tokenFromFile } from 'entitle/node'

const LICENSE_FILE = process.env.LICENSE_FILE ?? '/etc/my-app/license.jwt'
const PUBLIC_KEY = process.env.LICENSE_PUBLIC_KEY ?? '-----BEGIN PUBLIC KEY-----…'

// A desktop or on-prem app: its own license file, no server, and a clock that cannot be turned back.
export const license = createEntitlements({
  token: tokenFromFile(LICENSE_FILE),
  keys: PUBLIC_KEY,
  issuer: 'https://license.example.com',
  audience: 'my-desktop-app',
  storage: createFileStorage(process.env.ENTITLE_STATE_DIR ?? '.entitle'),
})

export async function exportAllowed(): Promise<string> {
  const decision = await license.check('export')
  return decision.allowed ? 'export enabled' : `export unavailable: ${decision.reason}`
}
