// `npm run bench:alloc`: what loading a customer allocates. 10 000 customers are loaded into one client (fetch
// stubbed, 1 000 in flight, the realistic token) under V8's allocation sampling, counting objects the collector has
// already taken too: the bytes a load makes, whatever lives on. Sampling is steady where time is not on a shared
// machine, so this is the figure an allocation change is judged by. Each run is a process of its own.
//
// `-- --against DIR` runs this build and the one in DIR (a built `dist/`) alternately, three runs each.
import { execFileSync } from 'node:child_process'
import { Session } from 'node:inspector/promises'
import { fileURLToPath } from 'node:url'

const N = 10_000
const IN_FLIGHT = 1_000

async function measure() {
  const { createEntitlements, createTestIssuer } = await import('./dist.mjs')
  const { realisticEntitlement } = await import('./realistic-token.mjs')
  const issuer = await createTestIssuer({ issuer: 'https://license.bench', audience: 'bench' })
  const resetsAt = Math.floor(Date.now() / 1000) + 10 * 86_400
  const subjects = Array.from({ length: N }, (_, i) => `customer-${i}`)
  const tokens = new Map()
  for (let i = 0; i < N; i += 500)
    await Promise.all(
      subjects.slice(i, i + 500).map(async (subject, j) => {
        // Each customer's own, as bench:scale signs them: its term to the second, its billing day, its asOf.
        const n = i + j
        const claims = realisticEntitlement(resetsAt + (n % 28) * 86_400, (n * 7919) % 100_000, {
          termEndsAt: resetsAt + 300 * 86_400 + n,
          asOf: Date.now() / 1000,
        })
        tokens.set(subject, await issuer.issue(claims, { subject, expiresInSec: 24 * 3600 }))
      }),
    )
  const fetch = async (input) => {
    const url = String(input instanceof Request ? input.url : input)
    if (url.endsWith('/v1/revocations')) return Response.json({ revoked: [] })
    return new Response(tokens.get(decodeURIComponent(url.split('/').pop())))
  }
  const client = () =>
    createEntitlements({
      server: { url: 'https://license.bench', revocationIntervalMs: 0 },
      keys: issuer.jwks,
      issuer: 'https://license.bench',
      audience: 'bench',
      maxSubjects: N,
      platform: { fetch },
    })
  const load = async (entitlements, among) => {
    for (let i = 0; i < among.length; i += IN_FLIGHT)
      await Promise.all(among.slice(i, i + IN_FLIGHT).map((subject) => entitlements.load(subject)))
  }
  // Warm: the code is compiled and the shared parts of the plan made before anything is counted.
  const warm = client()
  await load(warm, subjects.slice(0, 2_000))
  await warm.close({ deadlineMs: 0 })

  const session = new Session()
  session.connect()
  await session.post('HeapProfiler.enable')
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 1024,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  })
  const entitlements = client()
  await load(entitlements, subjects)
  const { profile } = await session.post('HeapProfiler.stopSampling')
  await entitlements.close({ deadlineMs: 0 })
  let bytes = 0
  for (const sample of profile.samples) bytes += sample.size
  console.log(JSON.stringify({ loads: N, bytesPerLoad: bytes / N }))
}

function run(dist) {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--child'], {
    encoding: 'utf8',
    env: { ...process.env, ...(dist ? { ENTITLE_BENCH_DIST: dist } : {}) },
  })
  return JSON.parse(out.trim().split('\n').pop()).bytesPerLoad
}

if (process.argv.includes('--child')) await measure()
else {
  const at = process.argv.indexOf('--against')
  const builds = [
    ['this build', undefined],
    ...(at === -1 ? [] : [[process.argv[at + 1], process.argv[at + 1]]]),
  ]
  const results = new Map(builds.map(([name]) => [name, []]))
  for (let round = 0; round < 3; round++) for (const [name, dist] of builds) results.get(name).push(run(dist))
  const kb = (bytes) => `${(bytes / 1000).toFixed(1)} KB`
  for (const [name, list] of results)
    console.log(
      `${name}: ${list.map(kb).join(', ')} allocated a load (${N.toLocaleString('en-US')} loads, 3 runs)`,
    )
}
