// One point of the scale suite (`npm run bench:scale`), in a process of its own: N customers loaded into one
// client, then the heap each costs, checkSync and record() beside a Map on the same random keys, and the load rate
// beside raw crypto.verify. Prints one JSON line.
import { createPublicKey, verify as nodeVerify } from 'node:crypto'
import { createEntitlements } from '../dist/index.js'
import { createTestIssuer } from '../dist/testing.js'
import { compare } from './harness.mjs'

const N = Number(process.argv[2] ?? 1000)
const FEATURES = 15

const issuer = await createTestIssuer({ issuer: 'https://license.bench', audience: 'bench' })
const resetsAt = Math.floor(Date.now() / 1000) + 10 * 86_400
const names = Array.from({ length: FEATURES }, (_, i) => `feature-${String(i).padStart(2, '0')}`)
// A realistic token, about 1.5 KB: flags, limits, caps, roles and upgrade hints.
const features = Object.fromEntries(
  names.map((name, i) => [
    name,
    i % 3 === 0
      ? true
      : i % 3 === 1
        ? {
            limit: 10 * i,
            upgrade: { plan: 'business', url: 'https://vendor.example/pricing?plan=business' },
          }
        : { cap: { limit: 1e6, period: 'month', used: i, resetsAt }, roles: ['admin', 'member'] },
  ]),
)
const ent = {
  plan: { id: 'team', name: 'Team', tier: 2 },
  features,
  term: { expiresAt: resetsAt + 86_400 * 300 },
}
const tokenFor = (subject) => issuer.issue(ent, { subject, expiresInSec: 24 * 3600 })
const sample = await tokenFor('customer-0')

const subjects = Array.from({ length: N }, (_, i) => `customer-${i}`)
// Tokens signed ahead, so loading measures verify + install, not signing.
const tokens = new Map()
for (let i = 0; i < N; i += 500)
  await Promise.all(subjects.slice(i, i + 500).map(async (s) => tokens.set(s, await tokenFor(s))))

const fetchToken = async (input) => {
  const url = input instanceof Request ? input.url : String(input)
  if (url.endsWith('/v1/revocations')) return Response.json({ revoked: [] })
  if (url.endsWith('/v1/usage')) return Response.json({ at: Date.now() })
  return new Response(tokens.get(decodeURIComponent(url.split('/').pop())))
}

globalThis.gc()
const before = process.memoryUsage().heapUsed
const client = createEntitlements({
  server: { url: 'https://license.bench', revocationIntervalMs: 0 },
  keys: issuer.jwks,
  issuer: 'https://license.bench',
  audience: 'bench',
  maxSubjects: N,
  platform: { fetch: fetchToken },
  usage: { flushIntervalMs: 3_600_000, maxQueuedLines: Math.max(10_000, N * 3) },
})
const started = performance.now()
for (let i = 0; i < N; i += 1000) await Promise.all(subjects.slice(i, i + 1000).map((s) => client.load(s)))
const loadSeconds = (performance.now() - started) / 1000
globalThis.gc()
const heapPerCustomer = (process.memoryUsage().heapUsed - before) / N

// Raw signature throughput of the same token on this machine, one core, synchronous: the floor.
const key = createPublicKey({ key: issuer.publicJwk, format: 'jwk' })
const dot = sample.lastIndexOf('.')
const input = Buffer.from(sample.slice(0, dot))
const signature = Buffer.from(sample.slice(dot + 1), 'base64url')
const t0 = performance.now()
let verified = 0
while (performance.now() - t0 < 500) {
  nodeVerify(null, input, key, signature)
  verified++
}
const rawVerifyPerSecond = verified / ((performance.now() - t0) / 1000)

// Random keys, drawn ahead from a seed: both sides walk the same sequence.
let seed = N
const random = () => {
  seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0
  return seed / 4_294_967_296
}
const KEYS = 1 << 16
const keySubjects = Array.from({ length: KEYS }, () => subjects[Math.floor(random() * N)])
const keyFeatures = Array.from({ length: KEYS }, () => names[Math.floor(random() * FEATURES)])
const map = new Map(subjects.map((s) => [s, { expiresAt: Date.now() + 3_600_000, features: new Set(names) }]))
const counts = new Map(subjects.map((s) => [s, new Map()]))
let i = 0
let sink = 0
const BATCH = 100
const context = { subject: '' }
const bareCheck = () => {
  for (let n = 0; n < BATCH; n++, i = (i + 1) & (KEYS - 1)) {
    const entry = map.get(keySubjects[i])
    if (entry !== undefined && entry.expiresAt > Date.now() && entry.features.has(keyFeatures[i])) sink++
  }
}
const ourCheck = () => {
  for (let n = 0; n < BATCH; n++, i = (i + 1) & (KEYS - 1)) {
    context.subject = keySubjects[i]
    if (client.checkSync(keyFeatures[i], context).allowed) sink++
  }
}
const bareRecord = () => {
  for (let n = 0; n < BATCH; n++, i = (i + 1) & (KEYS - 1)) {
    const perMetric = counts.get(keySubjects[i])
    perMetric.set(keyFeatures[i], (perMetric.get(keyFeatures[i]) ?? 0) + 1)
  }
}
const ourRecord = () => {
  for (let n = 0; n < BATCH; n++, i = (i + 1) & (KEYS - 1)) {
    context.subject = keySubjects[i]
    client.record(keyFeatures[i], 1, context)
  }
}
const ns = (row) => ({
  ours: 1e9 / (row.ours * BATCH),
  baseline: 1e9 / (row.baseline * BATCH),
  ratio: row.ratio,
})
const check = ns(await compare('checkSync', ourCheck, bareCheck, { ms: 200, rounds: 5 }))
const record = ns(await compare('record', ourRecord, bareRecord, { ms: 200, rounds: 5 }))
const stats = client.stats()
await client.close({ deadlineMs: 0 })
console.log(
  JSON.stringify({
    customers: N,
    tokenBytes: sample.length,
    heapPerCustomer,
    loadSeconds,
    loadsPerSecond: N / loadSeconds,
    rawVerifyPerSecond,
    check,
    record,
    cached: stats.cached,
    sink: sink > 0,
  }),
)
