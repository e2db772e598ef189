// The client in a multi-tenant service, against the reference license server: `npm run server` prints its URL, and
// its service key is ENTITLE_SERVICE_KEY in .license-server/secrets.env. Its tokens' issuer is its URL; their
// audience is its catalog's product, acme-editor.
import { createEntitlements } from 'entitle'
import { createFileStorage } from 'entitle/node'

const LICENSE_SERVER = process.env.LICENSE_SERVER ?? 'http://127.0.0.1:8787'

// Once per process: every customer's entitlements, cached, refreshed, and kept on disk for restarts.
export const entitlements = createEntitlements({
  server: { url: LICENSE_SERVER, apiKey: process.env.ENTITLE_SERVICE_KEY, events: true },
  keys: new URL('/.well-known/jwks.json', LICENSE_SERVER),
  issuer: LICENSE_SERVER,
  audience: 'acme-editor',
  storage: createFileStorage(process.env.ENTITLE_STATE_DIR ?? '.entitle'),
  failurePolicy: 'closed',
  featurePolicies: { export: 'open' },
})

entitlements.on('change', ({ subject, changes }) => console.log(`${subject} changed:`, changes))
entitlements.on('error', ({ during, error }) => console.warn(`entitlements ${during}: ${error.code}`))

// The audit log is in the Team and Business plans, for admins and auditors.
export async function canViewAuditLog(customerId: string, roles: string[]): Promise<boolean> {
  const decision = await entitlements.check('audit-log', { subject: customerId, roles })
  return decision.allowed
}

// Run as a script, it asks for an admin of each customer and exits: the client never holds a process open.
console.log(await canViewAuditLog('globex', ['admin']), await canViewAuditLog('acme', ['admin']))
