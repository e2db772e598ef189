import { describe, expect, it } from 'vitest'
import { describeClaimIssues } from '../../src/core/claim-issues.js'
import { entitlementTokenClaimsSchema } from '../../src/core/claims.js'
import { checkClaims, formatClaimProblems } from '../../src/core/claims-check.js'
import { seeded } from '../helpers.js'

/** A payload with every field of the format filled in. */
function fullClaims(): Record<string, unknown> {
  return {
    iss: 'https://license.example.com',
    sub: 'acme',
    aud: ['app', 'other'],
    iat: 1_700_000_000,
    nbf: 1_700_000_000,
    exp: 1_800_000_000,
    jti: 'tok-1',
    ent: {
      v: 2,
      plan: { id: 'team', name: 'Team', tier: 2 },
      addons: ['sso'],
      features: {
        export: true,
        seats: {
          limit: 10,
          soft: true,
          ceiling: 15,
          thresholds: [80, 100],
          upgrade: { plan: 'business', url: 'https://vendor.example/pricing' },
        },
        calls: {
          cap: {
            limit: 1000,
            period: 'month',
            used: 1.5,
            resetsAt: 1_750_000_000,
            asOf: 1_700_000_000.25,
            soft: true,
            ceiling: 1500,
            thresholds: [50, 100, 150],
          },
          roles: ['admin'],
          regions: { allow: ['US'], deny: ['US-NY'] },
          term: { expiresAt: 1_790_000_000, graceEndsAt: 1_795_000_000, trialEndsAt: 1_710_000_000 },
          addon: 'sso',
          enabled: true,
        },
        total: { cap: { limit: 5, period: 'total', used: 0 } },
        builds: {
          cap: { limit: 5000, period: 'month', used: 1200, resetsAt: 1_750_000_000 },
          per: {
            kind: 'repository',
            cap: { limit: 500, soft: true, ceiling: 600, thresholds: [80] },
            resources: {
              'repo-big': { cap: { limit: 2000, used: 450 } },
              'repo-x': { cap: { used: 480 } },
              'repo-off': { enabled: false },
            },
          },
        },
        members: { per: { kind: 'workspace', limit: 10, resources: { 'ws-9': { limit: 20 } } } },
        render: { pool: 'farm' },
        'sso-per-workspace': {
          per: {
            kind: 'workspace',
            enabled: false,
            cap: { limit: 5, period: 'day', resetsAt: 1_750_000_000 },
            resources: { 'ws-9': { enabled: true } },
          },
        },
      },
      term: { expiresAt: 1_790_000_000 },
      devices: { max: 3, fingerprints: ['fp-1'] },
      regions: { allow: ['DE'] },
      roles: ['member'],
      upgrade: { addon: 'sso' },
      upgrades: { sso: { plan: 'business', url: ' https://vendor.example/\tsso ' } },
      pools: {
        seats: { seats: 2, holder: 'machine', ttl: 120, heartbeat: 30, revival: 600, grace: 0 },
        farm: { seats: 10, holder: 'process', ttl: 60, heartbeat: 20, borrow: { max: 604_800, reserve: 2 } },
      },
      pool: 'seats',
      credits: {
        'ai-credits': {
          grants: [
            { id: 'allowance-2026-12', remaining: 750.5, category: 'allowance', expiresAt: 1_760_000_000 },
            { id: 'promo', remaining: 100, priority: 1, category: 'promotional', startsAt: 1_700_000_000 },
            { id: 'pack-1', remaining: 5000 },
          ],
          asOf: 1_700_000_000.5,
          spent: 1234.25,
          overdraft: 50,
          offline: { after: 86_400, spend: 200 },
          costs: { render: { amount: 5 }, tokens: { amount: 1, per: 1000 } },
        },
        storage: { grants: [], asOf: 1_700_000_000, spent: 0 },
      },
    },
  }
}

/** Every path to a value inside `root`, objects and arrays included. */
function paths(root: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const out: (string | number)[][] = [prefix]
  if (typeof root === 'object' && root !== null)
    for (const [key, value] of Object.entries(root))
      out.push(...paths(value, [...prefix, Array.isArray(root) ? Number(key) : key]))
  return out
}

const long = (n: number) => 'a'.repeat(n)
/** Values a hostile or buggy server could put anywhere. */
const HOSTILE: unknown[] = [
  undefined,
  null,
  true,
  false,
  0,
  1,
  2,
  -1,
  1.5,
  -0.5,
  2 ** 53,
  -(2 ** 53),
  1e300,
  Number.POSITIVE_INFINITY,
  253_402_300_799,
  253_402_300_800,
  '',
  'x',
  long(128),
  long(129),
  long(257),
  '1',
  [],
  ['a'],
  [''],
  [1],
  [long(129)],
  Array.from({ length: 257 }, () => 'r'),
  {},
  { id: 'p' },
  { limit: 1 },
  { cap: { limit: 1, period: 'day' } },
  { cap: { limit: 1, period: 'total', used: 0 } },
  { per: { kind: 'workspace' } },
  { per: { kind: 'workspace', cap: { limit: 1 } } },
  { seats: 1, holder: 'user', ttl: 10, heartbeat: 5 },
  { seats: 3, holder: 'machine', ttl: 60, heartbeat: 60, borrow: { max: 60, reserve: 4 } },
  { max: 59 },
  'machine',
  'seats',
  10,
  60,
  { limit: 1, period: 'day' },
  { cap: { used: 1 } },
  'month',
  'total',
  'decade',
  'http://a.example',
  'https://a.example/x',
  ' https://a.example/ ',
  'https://a.example/\n',
  'http:a.example',
  'ftp://a.example',
  'javascript:alert(1)',
  'https://',
  `https://a.example/${long(2040)}`,
  `https://a.example/${long(2030)}\t\t\t\t\t\t\t\t\t\t\t\t\t\t\t`,
]

function mutate(root: Record<string, unknown>, random: () => number): Record<string, unknown> {
  const copy = structuredClone(root)
  const all = paths(copy).filter((path) => path.length > 0)
  const edits = 1 + Math.floor(random() * 3)
  for (let edit = 0; edit < edits; edit++) {
    const path = all[Math.floor(random() * all.length)]!
    let parent: Record<string | number, unknown> = copy
    for (const key of path.slice(0, -1)) {
      const next = parent[key]
      if (typeof next !== 'object' || next === null) break
      parent = next as Record<string | number, unknown>
    }
    const key = path.at(-1)!
    const roll = random()
    if (roll < 0.15) delete parent[key]
    else if (roll < 0.25 && typeof parent === 'object' && !Array.isArray(parent))
      // A new key: unknown, empty, too long, or one aimed at the prototype.
      parent[['extra', '', long(129), '__proto__', 'constructor', 'toString'][Math.floor(random() * 6)]!] =
        HOSTILE[Math.floor(random() * HOSTILE.length)]
    else parent[key] = structuredClone(HOSTILE[Math.floor(random() * HOSTILE.length)])
  }
  return copy
}

function both(payload: unknown) {
  const zod = entitlementTokenClaimsSchema.safeParse(payload)
  const lean = checkClaims(payload)
  return {
    zod: zod.success
      ? { ok: true, out: JSON.stringify(zod.data) }
      : { ok: false, problems: describeClaimIssues(zod.error.issues) },
    lean: lean.problems
      ? { ok: false, problems: formatClaimProblems(lean.problems) }
      : { ok: true, out: JSON.stringify(lean.claims) },
  }
}

describe('the claims checker without zod', () => {
  it('takes a full payload as zod does: same output, unknown keys dropped, URLs trimmed', () => {
    const payload = { ...fullClaims(), extra: { deep: true } }
    const { zod, lean } = both(payload)
    expect(zod.ok).toBe(true)
    expect(lean).toEqual(zod)
    expect(JSON.parse(lean.out!).ent.upgrades.sso.url).toBe('https://vendor.example/sso')
  })

  it('agrees with the zod schema on verdict, output and every problem’s path and words, for 50 000 mutants', () => {
    const random = seeded(2026)
    let valid = 0
    for (let i = 0; i < 50_000; i++) {
      const payload = mutate(fullClaims(), random)
      const { zod, lean } = both(payload)
      if (JSON.stringify(lean) !== JSON.stringify(zod))
        expect({ payload, lean }).toEqual({ payload, lean: zod })
      if (zod.ok) valid++
    }
    // Both kinds were exercised.
    expect(valid).toBeGreaterThan(1000)
    expect(valid).toBeLessThan(49_000)
  })

  it('agrees on each rule of per-resource grants, and says what is wrong', () => {
    const withFeature = (feature: unknown, v = 2) => {
      const payload = fullClaims()
      const ent = payload.ent as { v: number; features: Record<string, unknown> }
      ent.v = v
      ent.features = { only: feature }
      return payload
    }
    const cases: Array<[unknown, number, string]> = [
      [{ per: { kind: 'workspace' } }, 1, 'ent.v: per-resource features (per), pools and credits need v: 2'],
      [
        { limit: 3, per: { kind: 'workspace' } },
        2,
        'ent.features.only.limit: a per-resource feature has its',
      ],
      [
        { per: { kind: 'repo', cap: { limit: 5 } } },
        2,
        'ent.features.only.per.cap.period: per.cap has a period',
      ],
      [
        {
          cap: { limit: 9, period: 'total', used: 0 },
          per: { kind: 'repo', cap: { limit: 5, period: 'total' } },
        },
        2,
        'ent.features.only.per.cap.period: per.cap has a period',
      ],
      [
        { per: { kind: 'repo', cap: { limit: 5, period: 'day' } } },
        2,
        'ent.features.only.per.cap.resetsAt: resetsAt',
      ],
      [{ per: { kind: 'repo', cap: { limit: 5, period: 'total', ceiling: 9 } } }, 2, 'needs soft: true'],
      [{ per: { kind: '' } }, 2, 'ent.features.only.per.kind: at least 1 characters'],
      [{ per: { kind: 'w', resources: { '': {} } } }, 2, 'ent.features.only.per.resources.: at least 1'],
      [
        { per: { kind: 'w', resources: { a: { cap: { used: -1 } } } } },
        2,
        'resources.a.cap.used: at least 0',
      ],
    ]
    for (const [feature, v, expected] of cases) {
      const { zod, lean } = both(withFeature(feature, v))
      expect(lean, JSON.stringify(feature)).toEqual(zod)
      expect(zod.ok).toBe(false)
      expect(zod.problems!.join('\n')).toContain(expected)
    }
    expect(both(withFeature({ per: { kind: 'w', enabled: false } }, 1)).zod.ok).toBe(false)
    expect(both(withFeature({ per: { kind: 'w', enabled: false } }, 2)).zod.ok).toBe(true)
  })

  it('agrees on each rule of credits, and says what is wrong', () => {
    const withCredits = (credits: unknown, v = 2) => {
      const payload = fullClaims()
      const ent = payload.ent as { v: number; credits: unknown; features: Record<string, unknown> }
      ent.v = v
      ent.credits = credits
      return payload
    }
    const balance = (extra: Record<string, unknown>) => ({ grants: [], asOf: 1, spent: 0, ...extra })
    const cases: Array<[unknown, number, string]> = [
      [{ c: balance({}) }, 1, 'ent.v: per-resource features (per), pools and credits need v: 2'],
      [
        {
          c: balance({
            grants: [
              { id: 'a', remaining: 1 },
              { id: 'a', remaining: 2 },
            ],
          }),
        },
        2,
        'ent.credits: a grant id appears twice in one credit type',
      ],
      [
        { c: balance({ costs: { x: { amount: 1 } } }), d: balance({ costs: { x: { amount: 2 } } }) },
        2,
        'ent.credits: a feature or metric costs credits of more than one type',
      ],
      [{ export: balance({}) }, 2, 'ent.credits: a credit type has the name of a feature'],
      [
        { c: balance({ grants: [{ id: 'a', remaining: -1 }] }) },
        2,
        'ent.credits.c.grants.0.remaining: at least 0',
      ],
      [
        { c: balance({ grants: [{ id: 'a', remaining: 1, category: 'gift' }] }) },
        2,
        'ent.credits.c.grants.0.category',
      ],
      [{ c: balance({ costs: { x: { amount: 1, per: 0 } } }) }, 2, 'ent.credits.c.costs.x.per: at least 1'],
      [{ c: balance({ offline: { after: 1.5, spend: 1 } }) }, 2, 'ent.credits.c.offline.after'],
      [{ c: { grants: [], asOf: 1 } }, 2, 'ent.credits.c.spent'],
    ]
    for (const [credits, v, expected] of cases) {
      const { zod, lean } = both(withCredits(credits, v))
      expect(lean, JSON.stringify(credits)).toEqual(zod)
      expect(zod.ok).toBe(false)
      expect(zod.problems!.join('\n')).toContain(expected)
    }
    expect(both(withCredits({ c: balance({}) }, 2)).zod.ok).toBe(true)
  })
})

describe('the claims checker on prototype names, inherited keys and URLs seen again, held to zod', () => {
  it('agrees on payloads that are not objects at all, and on prototype names', () => {
    for (const payload of [
      null,
      [],
      'x',
      1,
      true,
      {},
      { ent: [] },
      JSON.parse('{"__proto__": {"sub": "x"}}'),
    ]) {
      const { zod, lean } = both(payload)
      expect(lean).toEqual(zod)
    }
    const withProto = fullClaims()
    ;(withProto.ent as { features: object }).features = JSON.parse(
      '{"__proto__": true, "constructor": true, "toString": {"limit": 1}}',
    )
    const { zod, lean } = both(withProto)
    expect(lean).toEqual(zod)
    expect(Object.keys(JSON.parse(lean.out!).ent.features)).toEqual(['constructor', 'toString'])
  })
  it('takes a URL it took before as it did then, and refuses one it refused every time', () => {
    const withUrl = (url: unknown) => {
      const payload = fullClaims()
      ;(payload.ent as { upgrades: unknown }).upgrades = { sso: { plan: 'business', url } }
      return payload
    }
    // Passed URLs are remembered by what the token says: the second look must give the trimmed output, not the input.
    const spaced = ` https://vendor.example/\tpricing-${Math.random()} `
    const tooLong = `https://vendor.example/${'a'.repeat(2048)}`
    for (const url of [
      spaced,
      spaced,
      'x',
      'x',
      'ftp://vendor.example/',
      'ftp://vendor.example/',
      tooLong,
      tooLong,
    ]) {
      const { zod, lean } = both(withUrl(url))
      expect(lean, url).toEqual(zod)
    }
    expect(both(withUrl(spaced)).lean.ok).toBe(true)
    expect(JSON.parse(both(withUrl(spaced)).lean.out!).ent.upgrades.sso.url).toBe(
      spaced.trim().replace('\t', ''),
    )
    for (const url of ['x', tooLong]) expect(both(withUrl(url)).lean.ok).toBe(false)
  })

  it('reads the keys an object inherits as zod does, not only its own', () => {
    // JSON gives own keys only; an object the app builds may inherit some (a polluted prototype does the same).
    const payload = fullClaims()
    const features = (payload.ent as { features: Record<string, unknown> }).features
    features.inherited = Object.assign(Object.create({ limit: 3, upgrade: { plan: 'business' } }), {
      soft: true,
    })
    features.inheritedBad = Object.create({ limit: -1 })
    const { zod, lean } = both(payload)
    expect(lean).toEqual(zod)
    expect(zod.ok).toBe(false)
    delete features.inheritedBad
    const fine = both(payload)
    expect(fine.lean).toEqual(fine.zod)
    expect(JSON.parse(fine.lean.out!).ent.features.inherited).toEqual({
      limit: 3,
      soft: true,
      upgrade: { plan: 'business' },
    })
  })
})
