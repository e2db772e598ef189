// The quick-start demo: `npm run demo`.
//
// An issuer signs an entitlement token for one customer; the app verifies it offline and asks the questions a
// product asks. Until the reference license server lands (examples/license-server), `entitle/testing` plays the
// issuer: same token format, same keys, same verifier.
import { checkEntitlement, createEntitlements, createEntitlementVerifier, decide } from 'entitle'
import { createTestIssuer } from 'entitle/testing'

const DAY = 86_400
const now = Date.now()
const nowSec = Math.floor(now / 1000)
const line = (text = '') => console.log(text)
const heading = (text) => line(`\n== ${text} ${'='.repeat(Math.max(0, 70 - text.length))}`)

// 1. The issuer: in production, your license server, holding the private key.
const issuer = await createTestIssuer({
  issuer: 'https://license.acme-tools.example',
  audience: 'acme-editor',
})
heading('1. The license server signs what Globex bought')
const token = await issuer.issue(
  {
    plan: { id: 'team', name: 'Team', tier: 2 },
    addons: ['sso'],
    features: {
      export: true,
      sso: { addon: 'sso' },
      seats: { limit: 10 },
      'api-calls': { cap: { limit: 10_000, period: 'month', used: 9_990, resetsAt: nowSec + 5 * DAY } },
      'audit-log': { roles: ['admin', 'auditor'] },
      'ai-assistant': { term: { trialEndsAt: nowSec + 14 * DAY } },
      'eu-payments': { regions: { allow: ['DE', 'FR', 'NL'] } },
    },
    term: { expiresAt: nowSec + 365 * DAY, graceEndsAt: nowSec + 379 * DAY },
    upgrade: { url: 'https://acme-tools.example/pricing' },
    upgrades: {
      'custom-domains': { plan: 'enterprise', url: 'https://acme-tools.example/upgrade?to=enterprise' },
    },
  },
  // An offline license: the token stays valid until the grace period ends.
  { subject: 'globex', expiresInSec: 379 * DAY },
)
line(`token: ${token.slice(0, 60)}… (${token.length} characters, header typ entitlement+jwt, alg EdDSA)`)
line(`public keys the app trusts: ${JSON.stringify(issuer.jwks)}`)

// 2. The app: verify once, offline, with the public key only.
heading('2. The app verifies the token offline')
const verifier = createEntitlementVerifier({
  keys: issuer.jwks,
  issuer: 'https://license.acme-tools.example',
  audience: 'acme-editor',
})
const entitlements = await verifier.verify(token)
line(
  `customer ${entitlements.subject}, plan ${entitlements.plan.name}, add-ons ${entitlements.addons.join(', ')}`,
)
line(`features: ${[...entitlements.features.keys()].join(', ')}`)

// 3. Decisions: a pure function of (entitlements, feature, context, now).
heading('3. The questions a product asks')
const questions = [
  ['export', {}, 'Can Globex export?'],
  ['sso', {}, 'Is SSO (an add-on) on?'],
  ['custom-domains', {}, 'Custom domains (not in the plan)?'],
  ['seats', { usage: 9, amount: 1 }, 'Invite a 10th member (9 seats taken)?'],
  ['seats', { usage: 10, amount: 1 }, 'Invite an 11th member?'],
  ['api-calls', { amount: 5 }, 'Make 5 API calls (9,990 of 10,000 used)?'],
  ['api-calls', { amount: 50 }, 'Make 50 more API calls?'],
  ['audit-log', { roles: ['member'] }, 'Audit log, as a plain member?'],
  ['audit-log', { roles: ['admin'] }, 'Audit log, as an admin?'],
  ['ai-assistant', {}, 'AI assistant (in trial)?'],
  ['eu-payments', { region: 'DE' }, 'EU payments, user in Germany?'],
  ['eu-payments', { region: 'US-CA' }, 'EU payments, user in California?'],
]
for (const [feature, context, question] of questions) {
  const d = decide(entitlements, feature, context, now)
  const numbers = d.limit === undefined ? '' : ` ${d.used}/${d.limit} used, ${d.remaining} left`
  const hint = d.upgrade ? ` → upgrade: ${[d.upgrade.plan, d.upgrade.url].filter(Boolean).join(' ')}` : ''
  line(`${question.padEnd(44)} ${d.allowed ? 'ALLOWED' : 'DENIED '} ${d.reason}${numbers}${hint}`)
}

heading('4. Time passes (the clock is injected)')
for (const [label, at] of [
  ['in 370 days (term over, in grace)', now + 370 * DAY * 1000],
  ['in 380 days (grace over)', now + 380 * DAY * 1000],
  ['in 15 days (trial over)', now + 15 * DAY * 1000],
]) {
  const feature = label.includes('trial') ? 'ai-assistant' : 'export'
  const d = decide(entitlements, feature, {}, at)
  line(`${`${feature} ${label}`.padEnd(50)} ${d.allowed ? 'ALLOWED' : 'DENIED '} ${d.reason}`)
}

// 5. Bad tokens are denials with a reason, never exceptions.
heading('5. Bad tokens are denied, never thrown')
const [h, p, s] = token.split('.')
const richer = JSON.parse(Buffer.from(p, 'base64url').toString())
richer.ent.plan = { id: 'enterprise' }
richer.ent.features['custom-domains'] = true
const forged = `${h}.${Buffer.from(JSON.stringify(richer)).toString('base64url')}.${s}`
const stranger = await createTestIssuer({
  issuer: 'https://license.acme-tools.example',
  audience: 'acme-editor',
})
const cases = [
  ['a payload edited to Enterprise', forged],
  ['a token signed by another key', await stranger.issue({ features: { export: true } })],
  ['random text', 'definitely-not-a-token'],
  ['a 1 MB string', 'A'.repeat(1024 * 1024)],
]
for (const [label, candidate] of cases) {
  const d = await checkEntitlement(candidate, 'custom-domains', { verifier })
  line(`${label.padEnd(36)} ${d.allowed ? 'ALLOWED' : 'DENIED '} ${d.reason} (${d.error})`)
}

// 6. The client: a running app sees an upgrade with no restart. A stand-in in this process answers protocol v1
// with the same issuer (`npm run demo` runs the real license server, examples/license-server).
heading('6. A running app sees an upgrade, with nothing for the user to do')
const plans = new Map([
  ['globex', { plan: { id: 'team' }, features: { export: true, seats: { limit: 10 } } }],
])
const standIn = async (input) => {
  const url = new URL(input instanceof Request ? input.url : String(input))
  if (url.pathname === '/v1/revocations') return Response.json({ revoked: [] })
  const subject = decodeURIComponent(url.pathname.split('/').pop())
  if (!plans.has(subject)) return new Response('no license', { status: 404 })
  return new Response(await issuer.issue(plans.get(subject), { subject, expiresInSec: 3600 }))
}
const client = createEntitlements({
  server: { url: 'https://license.acme-tools.example', apiKey: 'sk_demo' },
  keys: issuer.jwks,
  issuer: 'https://license.acme-tools.example',
  audience: 'acme-editor',
  platform: { fetch: standIn },
})
client.on('change', ({ subject, previous, changes }) => {
  if (previous !== undefined) {
    line(
      `  change event for ${subject}: ${changes.map((c) => `${c.type}${c.feature ? ` ${c.feature}` : ''}`).join(', ')}`,
    )
  }
})
const show = async (label) => {
  const sso = await client.check('sso', { subject: 'globex' })
  const seats = await client.check('seats', { subject: 'globex', usage: 10 })
  line(
    `${label.padEnd(36)} sso ${sso.allowed ? 'ALLOWED' : 'DENIED '} (${sso.reason}, ${sso.source}); 11th seat ${seats.allowed ? 'ALLOWED' : 'DENIED'} (${seats.reason})`,
  )
}
await show('on the Team plan')
plans.set('globex', { plan: { id: 'business' }, features: { export: true, sso: true, seats: { limit: 50 } } })
await client.refresh('globex') // what a Server-Sent Event or the next background refresh does
await show('after the upgrade order')
line(`stats: ${JSON.stringify({ ...client.stats(), decisions: undefined })}`)
await client.close()

heading('Where each part lives')
line('token format (zod)      src/core/claims.ts    docs/token-format.md')
line('verifier (jose)         src/core/verify.ts, keys.ts docs/security.md')
line('decision engine         src/core/decide.ts    docs/decisions.md')
line('error codes             src/core/errors.ts    docs/errors.md')
line('the client              src/client/           docs/client.md')
line('test issuer             src/testing.ts')
