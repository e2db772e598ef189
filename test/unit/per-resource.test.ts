import { mkdtempSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { requireEntitlement } from '../../src/express/index.js'
import {
  createEntitlements,
  createEntitlementVerifier,
  decide,
  type EntitlementClaim,
  entitlementTokenClaimsSchema,
  metering,
} from '../../src/index.js'
import { createFileStorage } from '../../src/node/index.js'
import { EntitlementsProvider } from '../../src/openfeature/server.js'
import { formatVersionFor } from '../../src/protocol/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { frozen, NOW } from '../helpers.js'

// Per-resource grants (token format v2): a CI product sells 500 builds a month per repository within 5 000 for the
// account, 10 members per workspace, and SSO on one workspace bought as an add-on.
const resetsAt = Math.floor(NOW / 1000) + 86_400
const features = {
  builds: {
    cap: { limit: 5000, period: 'month', used: 4990, resetsAt },
    per: {
      kind: 'repository',
      cap: { limit: 500 },
      resources: {
        api: { cap: { used: 500 } },
        web: { cap: { used: 120 } },
        // A repository that bought more builds.
        mono: { cap: { limit: 2000, used: 1990 } },
      },
    },
  },
  members: { per: { kind: 'workspace', limit: 10, resources: { 'ws-big': { limit: 50 } } } },
  sso: { per: { kind: 'workspace', enabled: false, resources: { 'ws-9': { enabled: true } } } },
  export: true,
} satisfies EntitlementClaim['features']

async function verified(overrides: Partial<EntitlementClaim> = {}) {
  const issuer = await createTestIssuer({ now: frozen })
  const token = await issuer.issue({ plan: { id: 'ci-team' }, features, ...overrides })
  return { issuer, token, entitlements: await createEntitlementVerifier(issuer.verifyOptions).verify(token) }
}

describe('per-resource grants (format v2)', () => {
  it('a server issues v1 unless a feature is granted per resource; v1 cannot carry one', () => {
    expect(formatVersionFor({ features: { export: true, seats: { limit: 3 } } })).toBe(1)
    expect(formatVersionFor({ features })).toBe(2)
    const claims = {
      iss: 'https://license.example.com',
      sub: 'acme',
      aud: 'app',
      iat: 1,
      exp: 2,
      jti: 't',
      ent: { v: 1, plan: { id: 'ci-team' }, features },
    }
    const parsed = entitlementTokenClaimsSchema.safeParse(claims)
    expect(parsed.success).toBe(false)
    expect(parsed.error?.issues.map((issue) => issue.message)).toContain(
      'per-resource features (per), pools and credits need v: 2',
    )
    expect(entitlementTokenClaimsSchema.safeParse({ ...claims, ent: { ...claims.ent, v: 2 } }).success).toBe(
      true,
    )
  })

  it('refuses to verify a v1 token that carries a per-resource grant: an older reading would grant it account-wide', async () => {
    const { issuer } = await verified()
    await expect(issuer.issue({ v: 1, plan: { id: 'ci-team' }, features })).rejects.toThrow(
      /per-resource features \(per\), pools and credits need v: 2/,
    )
  })

  it('a per-repository cap denies at the repository while another is allowed, and says which level', async () => {
    const { entitlements } = await verified()
    expect(decide(entitlements, 'builds', { resource: 'repository:api' }, NOW)).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      limit: 500,
      used: 500,
      remaining: 0,
      resource: { id: 'repository:api', deniedBy: 'resource', own: { limit: 500, used: 500, remaining: 0 } },
    })
    expect(decide(entitlements, 'builds', { resource: 'repository:web' }, NOW)).toMatchObject({
      allowed: true,
      reason: 'granted',
      // The account binds: 10 left of 5 000, against 380 in the repository.
      limit: 5000,
      used: 4990,
      remaining: 10,
      resource: {
        deniedBy: undefined,
        own: { limit: 500, used: 120, remaining: 380 },
        account: { limit: 5000, used: 4990, remaining: 10 },
      },
    })
  })

  it('the account cap denies a fresh repository whole', async () => {
    const { entitlements } = await verified()
    expect(decide(entitlements, 'builds', { resource: 'repository:new', amount: 11 }, NOW)).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      limit: 5000,
      used: 4990,
      resource: { deniedBy: 'account', own: { limit: 500, used: 0 }, account: { limit: 5000, used: 4990 } },
    })
    // The app's usage of the repository counts toward both levels.
    expect(decide(entitlements, 'builds', { resource: 'repository:new', usage: 10 }, NOW)).toMatchObject({
      allowed: false,
      resource: { deniedBy: 'account', own: { used: 10 }, account: { used: 5000 } },
    })
  })

  it('an override raises one repository’s cap', async () => {
    const { entitlements } = await verified({
      features: { ...features, builds: { ...features.builds, cap: { ...features.builds.cap, used: 0 } } },
    })
    expect(decide(entitlements, 'builds', { resource: 'repository:mono', amount: 10 }, NOW)).toMatchObject({
      allowed: true,
      resource: { own: { limit: 2000, used: 1990, remaining: 10 } },
    })
    expect(decide(entitlements, 'builds', { resource: 'repository:mono', amount: 11 }, NOW)).toMatchObject({
      allowed: false,
      resource: { deniedBy: 'resource', own: { limit: 2000, used: 1990 } },
    })
  })

  it('an add-on for one workspace only; members per workspace with an override', async () => {
    const { entitlements } = await verified()
    expect(decide(entitlements, 'sso', { resource: 'workspace:ws-9' }, NOW)).toMatchObject({ allowed: true })
    expect(decide(entitlements, 'sso', { resource: 'workspace:ws-1' }, NOW)).toMatchObject({
      allowed: false,
      reason: 'not_in_plan',
      resource: { id: 'workspace:ws-1', deniedBy: 'resource' },
    })
    expect(decide(entitlements, 'members', { resource: 'workspace:ws-1', usage: 10 }, NOW)).toMatchObject({
      allowed: false,
      reason: 'limit_exceeded',
      resource: { deniedBy: 'resource', own: { limit: 10, used: 10 } },
    })
    expect(decide(entitlements, 'members', { resource: 'workspace:ws-big', usage: 10 }, NOW)).toMatchObject({
      allowed: true,
      limit: 50,
    })
    // A feature not granted per resource ignores the resource.
    expect(decide(entitlements, 'export', { resource: 'workspace:ws-1' }, NOW)).toMatchObject({
      allowed: true,
      resource: undefined,
    })
  })

  it('no resource, another kind, or a malformed one: denied as resource_required, never a pass or a throw', async () => {
    const { entitlements } = await verified()
    for (const resource of [undefined, 'workspace:api', 'api', ':api', 'repository:', '']) {
      expect(decide(entitlements, 'builds', resource === undefined ? {} : { resource }, NOW)).toMatchObject({
        allowed: false,
        reason: 'resource_required',
      })
    }
    for (const resource of [1, null, ['repository:api'], { id: 'api' }])
      expect(
        decide(entitlements, 'builds', { resource } as unknown as { resource: string }, NOW),
      ).toMatchObject({ allowed: false, reason: 'invalid_request' })
  })

  it('through the client: check and checkSync take the resource, and a resource is never memoized as another', async () => {
    const { issuer, token } = await verified()
    const client = createEntitlements({ metering, token, ...issuer.verifyOptions, platform: { now: frozen } })
    try {
      await client.load()
      expect(client.checkSync('builds', { resource: 'repository:api' }).allowed).toBe(false)
      expect(client.checkSync('builds', { resource: 'repository:web' }).allowed).toBe(true)
      expect(client.checkSync('builds').reason).toBe('resource_required')
      expect(await client.check('sso', { resource: 'workspace:ws-9' })).toMatchObject({ allowed: true })
      expect(await client.check('sso', { resource: 'workspace:ws-8' })).toMatchObject({ allowed: false })
    } finally {
      await client.close()
    }
  })

  it('consume() counts the resource and the account in one step; a denied consume counts nothing at either', async () => {
    const issuer = await createTestIssuer({ now: frozen })
    const token = await issuer.issue({
      plan: { id: 'ci' },
      features: {
        builds: {
          cap: { limit: 8, period: 'month', used: 0, resetsAt },
          per: { kind: 'repository', cap: { limit: 5 } },
        },
      },
    })
    const client = createEntitlements({ metering, token, ...issuer.verifyOptions, platform: { now: frozen } })
    try {
      await client.load()
      const a = { resource: 'repository:a' }
      const b = { resource: 'repository:b' }
      for (let i = 0; i < 5; i++) expect(client.consumeSync('builds', a).allowed).toBe(true)
      expect(client.consumeSync('builds', a)).toMatchObject({
        allowed: false,
        reason: 'usage_cap_reached',
        resource: { deniedBy: 'resource', own: { used: 5 }, account: { used: 5 } },
      })
      // Two of the three builds b has room for fit the account; the third is the account's ninth.
      expect(client.consumeSync('builds', { ...b, amount: 2 }).allowed).toBe(true)
      expect(await client.consume('builds', { ...b, amount: 2 })).toMatchObject({
        allowed: false,
        resource: { deniedBy: 'account', own: { used: 2 }, account: { used: 7 } },
      })
      expect(await client.consume('builds', b)).toMatchObject({ allowed: true, remaining: 0 })
      // Nothing was counted by the denials: a is at 5, b at 3, the account at 8.
      expect(client.checkSync('builds', { ...a, amount: 0 }).resource).toMatchObject({
        own: { used: 5 },
        account: { used: 8 },
      })
      expect(client.checkSync('builds', { ...b, amount: 0 }).resource?.own).toMatchObject({ used: 3 })
    } finally {
      await client.close()
    }
  })

  it('record() refuses a resource the wire cannot carry, counting nothing', async () => {
    const { issuer, token } = await verified()
    const client = createEntitlements({
      metering,
      token,
      ...issuer.verifyOptions,
      usage: { url: 'http://127.0.0.1:9/', flushIntervalMs: 3_600_000 },
      platform: { now: frozen },
    })
    try {
      await client.load()
      for (const resource of ['api', ':api', 'repository:', 7, `repository:${'x'.repeat(129)}`])
        expect(() => client.record('builds', 1, { resource } as unknown as { resource: string })).toThrow(
          expect.objectContaining({ code: 'usage_invalid' }),
        )
      expect(client.stats().usage.recorded).toBe(0)
      // A good one counts for the repository at once, before any token shows it.
      client.record('builds', 300, { resource: 'repository:web' })
      expect(client.checkSync('builds', { resource: 'repository:web' })).toMatchObject({
        allowed: false,
        resource: { deniedBy: 'account', own: { used: 420 }, account: { used: 5290 } },
      })
    } finally {
      await client.close({ deadlineMs: 200 })
    }
  })

  it('a restart with file storage counts the resource again from the journal', async () => {
    const { issuer, token } = await verified()
    const dir = mkdtempSync(join(tmpdir(), 'entitle-per-resource-'))
    const start = () =>
      createEntitlements({
        metering,
        token,
        ...issuer.verifyOptions,
        storage: createFileStorage(dir),
        // The license server is down throughout: nothing is confirmed, everything stays in the journal.
        usage: { url: 'http://127.0.0.1:9/', flushIntervalMs: 3_600_000, timeoutMs: 200 },
        platform: { now: frozen },
      })
    const first = start()
    await first.load()
    first.record('builds', 200, { resource: 'repository:web' })
    await first.close({ deadlineMs: 300 })
    const second = start()
    try {
      await second.load()
      expect(second.checkSync('builds', { resource: 'repository:web', amount: 0 }).resource).toMatchObject({
        own: { used: 320 },
        account: { used: 5190 },
      })
      expect(second.checkSync('builds', { resource: 'repository:api', amount: 0 }).resource).toMatchObject({
        own: { used: 500 },
        account: { used: 5190 },
      })
    } finally {
      await second.close({ deadlineMs: 300 })
    }
  })

  it('the Express guard takes the resource from the route; OpenFeature takes it from the evaluation context', async () => {
    const { issuer, token } = await verified()
    const client = createEntitlements({ metering, token, ...issuer.verifyOptions, platform: { now: frozen } })
    const app = express()
    app.get(
      '/repos/:repo/build',
      requireEntitlement(client, 'builds', {
        context: () => ({}),
        resource: (req) => `repository:${req.params.repo}`,
        consume: 1,
      }),
      (req, res) => res.json({ reason: req.entitlement?.reason }),
    )
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const api = await fetch(`${base}/repos/api/build`)
      expect(api.status).toBe(429)
      expect(await api.json()).toMatchObject({ type: 'urn:entitle:decision:usage_cap_reached' })
      expect(await (await fetch(`${base}/repos/web/build`)).json()).toEqual({ reason: 'granted' })
      const provider = new EntitlementsProvider(client)
      const resolved = await provider.resolveBooleanEvaluation('builds', true, { resource: 'repository:api' })
      expect(resolved).toMatchObject({
        value: false,
        flagMetadata: { reason: 'usage_cap_reached', resource: 'repository:api', deniedBy: 'resource' },
      })
    } finally {
      server.close()
      await client.close()
    }
  })
})
