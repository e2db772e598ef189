import { createEntitlements } from 'entitle'
import { createFileStorage } from 'entitle/node'

const LICENSE_SERVER = process.env.LICENSE_SERVER_URL ?? 'https://license.example.com'

// Once per process: every customer's entitlements, cached, refreshed, and kept on disk for restarts.
export const entitlements = createEntitlements({
  server: { url: LICENSE_SERVER, apiKey: process.env.LICENSE_API_KEY, events: true },
  keys: new URL('/.well-known/jwks.json', LICENSE_SERVER),
  issuer: 'https://license.example.com',
  audience: 'my-app',
  storage: createFileStorage(process.env.ENTITLE_STATE_DIR ?? '.entitle'),
  failurePolicy: 'closed',
  featurePolicies: { export: 'open' },
})

entitlements.on('change', ({ subject, changes }) => console.log(`${subject} changed:`, changes))
entitlements.on('error', ({ during, error }) => console.warn(`entitlements ${during}: ${error.code}`))

export async function canExport(customerId: string, roles: string[]): Promise<boolean> {
  const decision = await entitlements.check('export', { subject: customerId, roles })
  return decision.allowed
}
