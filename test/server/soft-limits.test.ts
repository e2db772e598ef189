import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { createEntitlements, type EntitlementsClient } from '../../src/index.js'
import { SERVICE, startTestServer, type TestServer } from './helpers.js'

// The reference server sells a soft cap: its catalog prices it, its tokens carry it, and its usage report says what
// is included and what is overage per window, as a billing system would invoice it.

let server: TestServer | undefined
let client: EntitlementsClient | undefined
afterEach(async () => {
  await client?.close({ deadlineMs: 1000 })
  await server?.close()
})

/** The example catalog with the Team plan's API calls made soft: 1 000 included, at most 1 500, alerts at 80 and 100%. */
function softCatalog(): string {
  const catalog = JSON.parse(readFileSync('examples/license-server/catalog.json', 'utf8'))
  catalog.plans.team.features['api-calls'].cap = {
    limit: 1000,
    period: 'month',
    soft: true,
    ceiling: 1500,
    thresholds: [80, 100],
  }
  const file = join(mkdtempSync(join(tmpdir(), 'entitle-soft-catalog-')), 'catalog.json')
  writeFileSync(file, JSON.stringify(catalog))
  return file
}

describe('soft limits on the reference server', () => {
  it('carries the soft cap in its tokens, and reports included and overage per window across a reset', async () => {
    const clock = { now: Date.UTC(2026, 10, 20, 12) }
    server = await startTestServer(clock, 600, { catalog: softCatalog() })
    await server.purchase('acme', 'team')
    client = createEntitlements({
      server: { url: server.url, apiKey: SERVICE },
      keys: new URL('/.well-known/jwks.json', server.url),
      issuer: server.url,
      audience: 'acme-editor',
      usage: { flushIntervalMs: 60_000 },
      platform: { now: () => clock.now },
    })
    await client.load('acme')
    expect(client.entitlements('acme')?.features.get('api-calls')?.cap).toMatchObject({
      limit: 1000,
      soft: true,
      ceiling: 1500,
      thresholds: [80, 100],
    })
    // 1 200 in the first window: 1 000 included, 200 overage; the decision says so.
    client.record('api-calls', 1200, { subject: 'acme' })
    expect(client.checkSync('api-calls', { subject: 'acme', amount: 1 })).toMatchObject({
      allowed: true,
      reason: 'overage',
      used: 1200,
      overage: 201,
    })
    await client.flush()
    // The window turns (the term started on the 20th: the next window starts on the 20th of next month).
    clock.now = Date.UTC(2026, 11, 21, 12)
    client.record('api-calls', 300, { subject: 'acme' })
    await client.flush()
    const report = (await (await server.admin('GET', '/customers/acme/usage')).json()) as {
      usage: Array<{ metric: string; windowEnd: string; total: number; included?: number; overage?: number }>
    }
    const calls = report.usage
      .filter((row) => row.metric === 'api-calls')
      .sort((a, b) => a.windowEnd.localeCompare(b.windowEnd))
    expect(calls).toEqual([
      {
        metric: 'api-calls',
        windowEnd: '2026-12-20T12:00:00.000Z',
        total: 1200,
        included: 1000,
        overage: 200,
      },
      { metric: 'api-calls', windowEnd: '2027-01-20T12:00:00.000Z', total: 300, included: 300, overage: 0 },
    ])
  })
})
