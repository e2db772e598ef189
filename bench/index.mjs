// `npm run bench`: verification and decision throughput of the built package, each beside a baseline measured
// in the same run. Run on an idle machine for stable figures; the ratios are what to compare across runs.
import { createPublicKey, verify as nodeVerify } from 'node:crypto'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { clientRows } from './client.mjs'
import { consumeRows } from './consume.mjs'
import { createEntitlementVerifier, createTestIssuer, decide } from './dist.mjs'
import { fleetRow } from './fleet.mjs'
import { compare, report } from './harness.mjs'
import { heavierEntitlement } from './heavier-token.mjs'
import { joseOptions } from './jose-options.mjs'
import { realisticEntitlement } from './realistic-token.mjs'
import { resourceRow } from './resource.mjs'
import { rolesRow } from './roles.mjs'
import { usageRows } from './usage.mjs'

const claims = {
  plan: { id: 'pro', tier: 2 },
  addons: ['sso'],
  features: {
    export: true,
    sso: { addon: 'sso' },
    seats: { limit: 25 },
    'api-calls': {
      cap: { limit: 100_000, period: 'month', used: 1234, resetsAt: Math.floor(Date.now() / 1000) + 86_400 },
    },
    reports: { roles: ['admin', 'analyst'] },
  },
  regions: { allow: ['US', 'DE', 'FR'] },
}

const WEBCRYPTO = {
  EdDSA: { import: 'Ed25519', verify: 'Ed25519' },
  ES256: { import: { name: 'ECDSA', namedCurve: 'P-256' }, verify: { name: 'ECDSA', hash: 'SHA-256' } },
}

async function verificationRows(alg) {
  const issuer = await createTestIssuer({ alg })
  const token = await issuer.issue(claims)
  const verifier = createEntitlementVerifier(issuer.verifyOptions)
  await verifier.verify(token)
  const ours = () => verifier.verify(token)
  // Baseline: Node's crypto.verify on exactly the signing input and signature of the same token, key already
  // imported, no parsing and no claims: the floor any JWT verifier in Node stands on. It is synchronous.
  const keyObject = createPublicKey({ key: issuer.publicJwk, format: 'jwk' })
  const dot = token.lastIndexOf('.')
  const signingInput = Buffer.from(token.slice(0, dot))
  const signature = Buffer.from(token.slice(dot + 1), 'base64url')
  const raw =
    alg === 'ES256'
      ? () => nodeVerify('sha256', signingInput, { key: keyObject, dsaEncoding: 'ieee-p1363' }, signature)
      : () => nodeVerify(null, signingInput, keyObject, signature)
  if (!raw()) throw new Error('baseline did not verify')
  // Second baseline: the WebCrypto call the runtime-neutral core must use (jose does), on the same bytes.
  const cryptoKey = await crypto.subtle.importKey('jwk', issuer.publicJwk, WEBCRYPTO[alg].import, false, [
    'verify',
  ])
  const subtle = () => crypto.subtle.verify(WEBCRYPTO[alg].verify, cryptoKey, signature, signingInput)
  if (!(await subtle())) throw new Error('WebCrypto baseline did not verify')
  return [
    await compare(`verify ${alg}, 32 in flight vs crypto.verify`, ours, raw, { inFlight: 32 }),
    await compare(`verify ${alg}, one at a time vs crypto.verify`, ours, raw),
    await compare(`verify ${alg}, 32 in flight vs crypto.subtle.verify`, ours, subtle, { inFlight: 32 }),
  ]
}

/**
 * Our verifier beside `jose.jwtVerify` with the same checks (algorithms, issuer, audience, typ, required claims) on
 * a realistic token of about 2 KB (15 features: flags, limits, caps with roles, upgrade hints): what the claim
 * checks and the read model cost on top of the JOSE work.
 */
async function joseRows() {
  const issuer = await createTestIssuer({ issuer: 'https://license.bench', audience: 'bench' })
  const resetsAt = Math.floor(Date.now() / 1000) + 10 * 86_400
  const token = await issuer.issue(realisticEntitlement(resetsAt), {
    subject: 'customer-1',
    expiresInSec: 86_400,
  })
  const verifier = createEntitlementVerifier(issuer.verifyOptions)
  const keys = createLocalJWKSet(issuer.jwks)
  const options = joseOptions(issuer)
  await verifier.verify(token)
  await jwtVerify(token, keys, options)
  const ours = () => verifier.verify(token)
  const jose = () => jwtVerify(token, keys, options)
  // The heavier shape a real plan carries (heavier-token.mjs): what more claims cost beside the same JOSE work.
  const heavier = await issuer.issue(heavierEntitlement(resetsAt), {
    subject: 'customer-1',
    expiresInSec: 86_400,
  })
  await verifier.verify(heavier)
  const oursHeavier = () => verifier.verify(heavier)
  const joseHeavier = () => jwtVerify(heavier, keys, options)
  return [
    await compare(`verify EdDSA ${token.length} B token, 32 in flight vs jose.jwtVerify`, ours, jose, {
      inFlight: 32,
    }),
    await compare(`verify EdDSA ${token.length} B token, one at a time vs jose.jwtVerify`, ours, jose),
    await compare(
      `verify EdDSA ${heavier.length} B heavier token, one at a time vs jose.jwtVerify`,
      oursHeavier,
      joseHeavier,
    ),
  ]
}

async function decisionRow() {
  const issuer = await createTestIssuer()
  const entitlements = await createEntitlementVerifier(issuer.verifyOptions).verify(
    await issuer.issue(claims),
  )
  const context = { usage: 10, amount: 1, roles: ['admin'], region: 'DE' }
  const now = Date.now()
  // Baseline: the least any in-memory check can do, a Map lookup and an expiry compare.
  const map = new Map([['api-calls', { expiresAt: now + 60_000, allowed: true }]])
  let sink = 0
  const bare = () => {
    const entry = map.get('api-calls')
    if (entry !== undefined && entry.expiresAt > now && entry.allowed) sink++
  }
  const ours = () => {
    if (decide(entitlements, 'api-calls', context, now).allowed) sink++
  }
  const row = await compare('decide (verified token, metered cap) vs Map.get', ours, bare, { ms: 200 })
  if (sink === 0) throw new Error('nothing decided')
  return row
}

const jose = await joseRows()
const consume = await consumeRows()
const client = await clientRows()
const usage = await usageRows()
const fleet = await fleetRow()
const resource = await resourceRow()
const roles = await rolesRow()
const rows = [
  ...(await verificationRows('EdDSA')),
  ...(await verificationRows('ES256')),
  ...jose,
  await decisionRow(),
  ...client.rows,
  roles,
  ...consume,
  resource,
  usage.row,
  ...(fleet ? [fleet] : []),
]
report(rows)
const memory = {
  perCustomerKiB: client.perCustomer / 1024,
  meterMiB: usage.held / 1024 / 1024,
  meterLines: usage.lines,
}
if (process.argv.includes('--record')) await recordRun(rows, memory)
console.log(
  `\nmemory held by the client per cached customer: ${(client.perCustomer / 1024).toFixed(1)} KiB (heap, after GC)`,
)
console.log(
  `memory held by the usage meter after 1,000,000 records over 1,000 customers x 20 metrics: ${(usage.held / 1024 / 1024).toFixed(1)} MiB in ${usage.lines} lines (${Math.round(usage.held / usage.lines)} bytes a line; heap, after GC)`,
)
if (!fleet)
  console.log('no redis-server installed: the fleet row was not measured (apt-get install redis-server)')

/**
 * `npm run bench -- --record`: appends this run to bench/runs.json (its date, the machine, Node, every row and the
 * memory figures). docs/performance.md's figures table is made from the last session there
 * (`node scripts/bench-table.mjs --write`), and a docs test fails when the page and the file disagree.
 */
async function recordRun(rows, memory) {
  const { readFileSync, writeFileSync, existsSync } = await import('node:fs')
  const { createHash } = await import('node:crypto')
  const os = await import('node:os')
  const file = new URL('./runs.json', import.meta.url)
  const runs = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : []
  runs.push({
    date: new Date().toISOString().slice(0, 10),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    node: process.version,
    // Which build ran: the first 12 hex digits of its index.js's SHA-256.
    build: createHash('sha256')
      .update(
        readFileSync(
          `${process.env.ENTITLE_BENCH_DIST ?? new URL('../dist', import.meta.url).pathname}/index.js`,
        ),
      )
      .digest('hex')
      .slice(0, 12),
    command: 'npm run bench -- --record',
    rows: rows.map(({ name, ours, baseline, ratio }) => ({
      name,
      ours: Math.round(ours),
      baseline: Math.round(baseline),
      ratio: Number(ratio.toFixed(2)),
    })),
    memory: {
      perCustomerKiB: Number(memory.perCustomerKiB.toFixed(2)),
      meterMiB: Number(memory.meterMiB.toFixed(1)),
      meterLines: memory.meterLines,
    },
  })
  writeFileSync(file, `${JSON.stringify(runs, null, 1)}\n`)
  console.log(`recorded in bench/runs.json (${runs.length} runs)`)
}
