import { beforeEach, describe, expect, it } from 'vitest'
import type { EntitlementClaim } from '../../src/core/claims.js'
import {
  createEntitlements,
  createMemoryStorage,
  type EntitlementStorage,
  type ErrorEvent,
  metering,
} from '../../src/index.js'
import { NOW, NOW_SEC, rejectionCode } from '../helpers.js'
import { clientFixture } from './fixture.js'
import { SERVER } from './harness.js'
import { fakeUsageIngest } from './usage-ingest.js'

const DAY_SEC = 86_400
/** The current window of the cap ends ten days after NOW. */
const RESETS_AT_SEC = NOW_SEC + 10 * DAY_SEC

function metered(used: number, limit = 10, resetsAt = RESETS_AT_SEC): Partial<EntitlementClaim> {
  return {
    plan: { id: 'team' },
    features: {
      export: true,
      'api-calls': { cap: { limit, period: 'month', used, resetsAt } },
    },
  }
}

let ingest: ReturnType<typeof fakeUsageIngest>
let errors: ErrorEvent[]

const fx = clientFixture({ made: (made) => made.on('error', (event) => errors.push(event)) })
const client = fx.client
beforeEach(() => {
  ingest = fakeUsageIngest(fx.msw, fx.clock)
  errors = []
})

const ids = (batch: { lines: Array<{ id: string }> }) => batch.lines.map((line) => line.id)

describe('record() and checks of a metered cap', () => {
  it('counts a record in the very next check, against the snapshot in the token', async () => {
    fx.server.sell('acme', metered(7))
    const meter = client()
    expect(await meter.check('api-calls', { subject: 'acme' })).toMatchObject({
      allowed: true,
      used: 7,
      remaining: 3,
    })
    meter.record('api-calls', 2, { subject: 'acme' })
    expect(meter.checkSync('api-calls', { subject: 'acme' })).toMatchObject({
      allowed: true,
      used: 9,
      remaining: 1,
    })
    meter.record('api-calls', 1, { subject: 'acme' })
    expect(meter.checkSync('api-calls', { subject: 'acme' })).toMatchObject({
      allowed: false,
      reason: 'usage_cap_reached',
      used: 10,
      remaining: 0,
    })
  })

  it('consumeSync() fires a usage alert, and works out usage for alerts only where a cap has them', async () => {
    fx.server.sell('acme', {
      plan: { id: 'team' },
      features: {
        'api-calls': { cap: { limit: 10, period: 'month', used: 7, resetsAt: RESETS_AT_SEC } },
        exports: {
          cap: { limit: 10, period: 'month', used: 7, resetsAt: RESETS_AT_SEC, thresholds: [80] },
        },
      },
    })
    let reads = 0
    const now = () => {
      reads++
      return fx.clock.platform.now()
    }
    const platform = { ...fx.clock.platform, now }
    const meter = client({ platform })
    const alerts: number[] = []
    meter.on('threshold', (event) => alerts.push(event.threshold))
    await meter.load('acme')
    const readsOf = (consume: () => void) => {
      const before = reads
      consume()
      return reads - before
    }
    // The first use starts the meter (one more read, once).
    meter.consumeSync('api-calls', { subject: 'acme' })
    // The decision and the usage line each read the clock; a cap with alerts reads it again for its usage and the
    // alert's window. Before, every consume worked its usage out, alerts or not (3 reads).
    expect(readsOf(() => meter.consumeSync('api-calls', { subject: 'acme' }))).toBe(2)
    expect(readsOf(() => meter.consumeSync('exports', { subject: 'acme' }))).toBe(4)
    await fx.clock.idle()
    expect(alerts).toEqual([80])
    expect(meter.checkSync('api-calls', { subject: 'acme' })).toMatchObject({ used: 9, remaining: 1 })
    expect(meter.checkSync('exports', { subject: 'acme' })).toMatchObject({ used: 8, remaining: 2 })
  })

  it('counts usage once when the server confirms it and a newer token carries it in its snapshot', async () => {
    fx.server.sell('acme', metered(2))
    const meter = client()
    await meter.load('acme')
    meter.record('api-calls', 3, { subject: 'acme' })
    await meter.flush()
    expect(ingest.total('acme', 'api-calls')).toBe(3)
    // Confirmed, but the token in memory was signed before: still counted locally.
    expect(meter.checkSync('api-calls', { subject: 'acme' }).used).toBe(5)
    // The server signs a new token whose snapshot includes the three units.
    await fx.clock.advance(1000)
    fx.server.sell('acme', metered(5))
    await meter.refresh('acme')
    expect(meter.checkSync('api-calls', { subject: 'acme' }).used).toBe(5)
  })

  it('a token signed within the same second as the confirmation counts it locally too: never too few', async () => {
    fx.server.sell('acme', metered(0))
    const meter = client()
    await meter.load('acme')
    meter.record('api-calls', 3, { subject: 'acme' })
    await meter.flush()
    fx.server.sell('acme', metered(3))
    await meter.refresh('acme')
    // Ambiguous within the second: the client errs on counting twice until the next token, not on missing usage.
    expect(meter.checkSync('api-calls', { subject: 'acme' }).used).toBe(6)
  })

  it('starts the count from zero when the cap window resets, and sends each window on its own line', async () => {
    // The window ends in 30 minutes, while the token is still valid.
    const resetsAt = NOW_SEC + 1800
    fx.server.sell('acme', metered(9, 10, resetsAt))
    const meter = client()
    await meter.load('acme')
    meter.record('api-calls', 1, { subject: 'acme' })
    expect(meter.checkSync('api-calls', { subject: 'acme' }).allowed).toBe(false)
    fx.clock.setClock(resetsAt * 1000 + 1)
    expect(meter.checkSync('api-calls', { subject: 'acme', amount: 1 })).toMatchObject({
      allowed: true,
      used: 0,
    })
    meter.record('api-calls', 4, { subject: 'acme' })
    expect(meter.checkSync('api-calls', { subject: 'acme', amount: 1 }).used).toBe(4)
    await meter.flush()
    const lines = ingest.received.flatMap((batch) => batch.lines)
    expect(lines.map((line) => line.amount)).toEqual([1, 4])
    expect(lines[0]!.end).toBeLessThan(resetsAt * 1000)
    expect(lines[1]!.start).toBeGreaterThanOrEqual(resetsAt * 1000)
  })

  it('a window that ends while its line is open keeps every record summed into that line', async () => {
    const resetsAt = NOW_SEC + 1800
    fx.server.sell('acme', metered(0, 100, resetsAt))
    const meter = client({ usage: { flushIntervalMs: 3_600_000 } })
    await meter.load('acme')
    meter.record('api-calls', 2, { subject: 'acme' })
    await fx.clock.advance(10_000)
    meter.record('api-calls', 3, { subject: 'acme' })
    const lastOfFirstWindow = fx.clock.platform.now()
    fx.clock.setClock(resetsAt * 1000 + 1)
    meter.record('api-calls', 4, { subject: 'acme' })
    meter.record('api-calls', 5, { subject: 'acme' })
    await meter.flush()
    const lines = ingest.received.flatMap((batch) => batch.lines)
    expect(lines.map((line) => line.amount)).toEqual([5, 9])
    expect(lines[0]!.end).toBe(lastOfFirstWindow)
    expect(lines[1]!.start).toBe(resetsAt * 1000 + 1)
  })

  it('a clock set back while a line is open stretches the line back: it covers every record in it', async () => {
    fx.server.sell('acme', metered(0, 100))
    const meter = client({ usage: { flushIntervalMs: 3_600_000 } })
    await meter.load('acme')
    const at = fx.clock.platform.now()
    meter.record('api-calls', 1, { subject: 'acme' })
    meter.record('api-calls', 1, { subject: 'acme' })
    fx.clock.setClock(at - 5000)
    meter.record('api-calls', 1, { subject: 'acme' })
    fx.clock.setClock(at + 2000)
    meter.record('api-calls', 1, { subject: 'acme' })
    await meter.flush()
    const lines = ingest.received.flatMap((batch) => batch.lines)
    expect(lines.map(({ amount, start, end }) => ({ amount, start, end }))).toEqual([
      { amount: 4, start: at - 5000, end: at + 2000 },
    ])
  })

  it('a line that reaches the largest amount a line may carry hands over to a new one, every unit counted', async () => {
    fx.server.sell('acme', metered(0, 9e15))
    const meter = client({ usage: { flushIntervalMs: 3_600_000 } })
    await meter.load('acme')
    meter.record('api-calls', 1e15 - 10, { subject: 'acme' })
    meter.record('api-calls', 5, { subject: 'acme' })
    meter.record('api-calls', 10, { subject: 'acme' })
    meter.record('api-calls', 7, { subject: 'acme' })
    await meter.flush()
    const lines = ingest.received.flatMap((batch) => batch.lines)
    expect(lines.map((line) => line.amount)).toEqual([1e15 - 5, 17])
    expect(ingest.total('acme', 'api-calls')).toBe(1e15 + 12)
  })

  it('refuses bad records with usage_invalid and counts nothing', async () => {
    fx.server.sell('acme', metered(0))
    const meter = client()
    const attempt = (fn: () => void) => rejectionCode(Promise.resolve().then(fn))
    expect(await attempt(() => meter.record('api-calls', -1, { subject: 'acme' }))).toBe('usage_invalid')
    expect(await attempt(() => meter.record('api-calls', Number.NaN, { subject: 'acme' }))).toBe(
      'usage_invalid',
    )
    expect(
      await attempt(() => meter.record('api-calls', Number.POSITIVE_INFINITY, { subject: 'acme' })),
    ).toBe('usage_invalid')
    expect(await attempt(() => meter.record('', 1, { subject: 'acme' }))).toBe('usage_invalid')
    expect(
      await attempt(() =>
        meter.record('api-calls', 1, { subject: 'acme', dimensions: { region: 5 as unknown as string } }),
      ),
    ).toBe('usage_invalid')
    const circular: Record<string, unknown> = {}
    circular.self = circular
    expect(await attempt(() => meter.record('api-calls', 1, { subject: 'acme', properties: circular }))).toBe(
      'usage_invalid',
    )
    expect(() => meter.record('api-calls', 1)).toThrow(TypeError)
    expect(meter.stats().usage.recorded).toBe(0)
    await meter.flush()
    expect(ingest.received).toHaveLength(0)
  })

  it('single-tenant: sends usage under the subject of its own token to usage.url, and counts it in checks', async () => {
    const token = await fx.server.issuer.issue(metered(1), { subject: 'desktop-42', expiresInSec: 3600 })
    const app = client({ server: undefined, token, usage: { url: SERVER, apiKey: 'lk_desktop' } })
    await app.load()
    app.record('api-calls', 4)
    expect(app.checkSync('api-calls')).toMatchObject({ used: 5, remaining: 5 })
    await app.flush()
    expect(ingest.total('desktop-42', 'api-calls')).toBe(4)
    expect(ingest.received[0]!.authorization).toBe('Bearer lk_desktop')
  })

  it('the journal learns what the server confirmed: a restart does not count it again', async () => {
    fx.server.sell('acme', metered(0))
    const storage = createMemoryStorage()
    const first = client({ storage, usage: { flushIntervalMs: 5000, persistIntervalMs: 1000 } })
    await first.load('acme')
    first.record('api-calls', 3, { subject: 'acme' })
    await fx.clock.advance(1000) // journaled, unsent
    await fx.clock.advance(4000) // sent and confirmed
    await fx.clock.advance(1000) // the journal is told
    expect(ingest.total('acme', 'api-calls')).toBe(3)
    const second = client({ storage })
    await second.flush()
    expect(ingest.received).toHaveLength(1)
    expect(second.stats().usage.pending).toBe(0)
  })

  it('needs somewhere to send usage', () => {
    const offline = client({ server: undefined, token: 'x.y.z' })
    expect(() => offline.record('api-calls')).toThrow(/usage\.url/)
  })
})

describe('aggregation and batching', () => {
  it('sums records per customer, metric and dimensions into one line each', async () => {
    const meter = client()
    for (let i = 0; i < 1000; i++) {
      meter.record('api-calls', 1, { subject: `c${i % 3}` })
      meter.record('storage-gb', 0.5, { subject: `c${i % 3}` })
    }
    meter.record('api-calls', 2, { subject: 'c0', dimensions: { region: 'eu', tier: 'gold' } })
    meter.record('api-calls', 3, { subject: 'c0', dimensions: { tier: 'gold', region: 'eu' } })
    await meter.flush()
    const lines = ingest.received.flatMap((batch) => batch.lines)
    expect(lines).toHaveLength(7)
    expect(ingest.total('c0', 'api-calls')).toBe(334 + 5)
    expect(ingest.total('c1', 'api-calls')).toBe(333)
    expect(ingest.total('c2', 'storage-gb')).toBe(166.5)
    expect(lines.find((line) => line.dimensions)).toMatchObject({
      amount: 5,
      dimensions: { region: 'eu', tier: 'gold' },
    })
    expect(meter.stats().usage).toMatchObject({ recorded: 2002, aggregated: 1995, sent: 7, pending: 0 })
  })

  it('sends on a timer: nothing before flushIntervalMs, everything at it', async () => {
    const meter = client({ usage: { flushIntervalMs: 5000 } })
    meter.record('api-calls', 1, { subject: 'acme' })
    await fx.clock.advance(4999)
    expect(ingest.received).toHaveLength(0)
    await fx.clock.advance(1)
    expect(ingest.received).toHaveLength(1)
    expect(ingest.received[0]).toMatchObject({ authorization: 'Bearer sk_test' })
    expect(ingest.received[0]!.idempotencyKey).toBe(ingest.received[0]!.batch)
  })

  it('sends a full batch at once, by line count', async () => {
    const meter = client({ usage: { maxBatchLines: 10 } })
    for (let i = 0; i < 25; i++) meter.record('api-calls', 1, { subject: `c${i}` })
    await fx.clock.advance(0)
    expect(ingest.received.map((batch) => batch.lines.length)).toEqual([10, 10, 5])
  })

  it('keeps each batch within maxBatchBytes', async () => {
    const meter = client({ usage: { maxBatchBytes: 2000 } })
    for (let i = 0; i < 60; i++) meter.record('api-calls', 1, { subject: `customer-${i}` })
    await meter.flush()
    expect(ingest.received.length).toBeGreaterThan(2)
    for (const batch of ingest.received) expect(batch.bytes).toBeLessThanOrEqual(2000)
    expect(ingest.received.flatMap((batch) => batch.lines)).toHaveLength(60)
  })

  it('raw mode sends every record as its own line, with its time and properties', async () => {
    const meter = client({ usage: { mode: 'raw' } })
    meter.record('api-calls', 1, { subject: 'acme', properties: { route: '/export', user: 'u1' } })
    await fx.clock.advance(250)
    meter.record('api-calls', 1, { subject: 'acme', properties: { route: '/import' } })
    await meter.flush()
    const lines = ingest.received.flatMap((batch) => batch.lines)
    expect(lines).toHaveLength(2)
    expect(lines[0]).toMatchObject({ start: NOW, end: NOW, properties: { route: '/export', user: 'u1' } })
    expect(lines[1]).toMatchObject({ start: NOW + 250, properties: { route: '/import' } })
    expect(new Set(lines.map((line) => line.id)).size).toBe(2)
  })
})

describe('delivery', () => {
  it('retries a failed batch with the same batch id and line ids, after capped backoff with full jitter', async () => {
    const meter = client({ usage: { flushIntervalMs: 5000, backoff: { initialMs: 1000, maxMs: 60_000 } } })
    ingest.script.push('500', 'network', 'ok')
    meter.record('api-calls', 7, { subject: 'acme' })
    await fx.clock.advance(5000)
    // Random is 0.5: the retries wait 0.5 · 1 s, then 0.5 · 2 s.
    await fx.clock.advance(499)
    expect(ingest.received).toHaveLength(1)
    await fx.clock.advance(1)
    expect(ingest.received).toHaveLength(2)
    await fx.clock.advance(1000)
    expect(ingest.received).toHaveLength(3)
    const [first, second, third] = ingest.received
    expect(second!.batch).toBe(first!.batch)
    expect(third!.batch).toBe(first!.batch)
    expect(ids(third!)).toEqual(ids(first!))
    expect(ingest.total('acme', 'api-calls')).toBe(7)
    expect(meter.stats().usage).toMatchObject({ retried: 2, sent: 1, pending: 0 })
    expect(errors.map((event) => [event.during, event.error.code])).toEqual([
      ['usage', 'server_unavailable'],
      ['usage', 'server_unavailable'],
    ])
  })

  it('counts once when the server stored a batch but its answer was lost', async () => {
    const meter = client()
    ingest.script.push('store-then-500')
    meter.record('api-calls', 5, { subject: 'acme' })
    await meter.flush()
    await meter.flush()
    expect(ingest.received).toHaveLength(2)
    expect(ingest.duplicates).toBe(1)
    expect(ingest.total('acme', 'api-calls')).toBe(5)
  })

  it('honours Retry-After on 429 and 503', async () => {
    const meter = client({ usage: { flushIntervalMs: 1000 } })
    ingest.script.push({ status: 429, retryAfter: '30' }, { status: 503, retryAfter: '120' })
    meter.record('api-calls', 1, { subject: 'acme' })
    await fx.clock.advance(1000)
    await fx.clock.advance(29_999)
    expect(ingest.received).toHaveLength(1)
    await fx.clock.advance(1)
    expect(ingest.received).toHaveLength(2)
    await fx.clock.advance(119_999)
    expect(ingest.received).toHaveLength(2)
    await fx.clock.advance(1)
    expect(ingest.received).toHaveLength(3)
    expect(ingest.total('acme', 'api-calls')).toBe(1)
  })

  it('sets aside a batch the server rejects (422), reports it, and resends it when asked', async () => {
    const meter = client()
    ingest.script.push({ status: 422 })
    meter.record('api-calls', 2, { subject: 'acme' })
    meter.record('seats-used', 1, { subject: 'acme' })
    await meter.flush()
    expect(ingest.total('acme', 'api-calls')).toBe(0)
    expect(meter.setAsideUsage().map((line) => [line.metric, line.amount])).toEqual([
      ['api-calls', 2],
      ['seats-used', 1],
    ])
    expect(meter.setAsideUsage()[0]!.reason).toMatch(/422/)
    expect(errors.at(-1)?.error.code).toBe('usage_rejected')
    expect(meter.stats().usage).toMatchObject({ setAside: 2, pending: 0, dropped: 0 })
    expect(meter.resendSetAsideUsage()).toBe(2)
    await meter.flush()
    expect(ingest.total('acme', 'api-calls')).toBe(2)
    expect(ids(ingest.received[1]!)).toEqual(ids(ingest.received[0]!))
  })

  it('sets aside only the lines a 200 answer refuses one by one', async () => {
    const meter = client()
    ingest.script.push({ rejectMetric: 'bogus' })
    meter.record('api-calls', 2, { subject: 'acme' })
    meter.record('bogus', 1, { subject: 'acme' })
    await meter.flush()
    expect(ingest.total('acme', 'api-calls')).toBe(2)
    expect(ingest.total('acme', 'bogus')).toBe(0)
    expect(meter.setAsideUsage()).toMatchObject([{ metric: 'bogus', amount: 1, reason: 'unknown metric' }])
    expect(meter.stats().usage).toMatchObject({ sent: 1, setAside: 1, pending: 0 })
    expect(errors.at(-1)?.error.code).toBe('usage_rejected')
  })

  it('splits a batch the server finds too large (413), and sets aside a single line it still refuses', async () => {
    const meter = client()
    for (let i = 0; i < 8; i++) meter.record('api-calls', 1, { subject: `c${i}` })
    ingest.script.push({ status: 413 }, 'ok', 'ok')
    await meter.flush()
    expect(ingest.received.map((batch) => batch.lines.length)).toEqual([8, 4, 4])
    expect(new Set(ingest.received.slice(1).flatMap(ids))).toEqual(new Set(ids(ingest.received[0]!)))
    meter.record('api-calls', 1, { subject: 'big' })
    ingest.script.push({ status: 413 })
    await meter.flush()
    expect(meter.setAsideUsage()).toMatchObject([{ subject: 'big', reason: 'too large' }])
    expect(meter.stats().usage.pending).toBe(0)
  })

  it('stops sending after 401 until the longest backoff or an explicit flush', async () => {
    const meter = client({ usage: { flushIntervalMs: 1000, backoff: { maxMs: 60_000 } } })
    ingest.script.push({ status: 401 })
    meter.record('api-calls', 1, { subject: 'acme' })
    await fx.clock.advance(1000)
    expect(errors.at(-1)?.error.code).toBe('server_rejected')
    meter.record('api-calls', 1, { subject: 'acme' })
    await fx.clock.advance(30_000)
    expect(ingest.received).toHaveLength(1)
    expect(meter.stats().usage.pending).toBe(2)
    await meter.flush()
    expect(ingest.total('acme', 'api-calls')).toBe(2)
  })

  it('keeps at most one batch in flight unless told otherwise', async () => {
    const one = client({ usage: { maxBatchLines: 2 } })
    ingest.script.push('hang')
    for (let i = 0; i < 6; i++) one.record('api-calls', 1, { subject: `c${i}` })
    await fx.clock.advance(0)
    expect(ingest.received).toHaveLength(1)
    await one.close({ deadlineMs: 0 })
    ingest.received.length = 0
    ingest.script.push('hang', 'hang', 'hang')
    const three = client({ usage: { maxBatchLines: 2, maxInFlight: 3 } })
    for (let i = 0; i < 6; i++) three.record('api-calls', 1, { subject: `c${i}` })
    await fx.clock.advance(0)
    expect(ingest.received).toHaveLength(3)
  })
})

describe('bounded memory', () => {
  it('aggregates harder when the queue is nearly full, then drops and says so', async () => {
    const meter = client({ usage: { maxQueuedLines: 10 } })
    // 9 lines with dimensions fit (90%); the rest fold into the customer's plain line.
    for (let i = 0; i < 20; i++)
      meter.record('api-calls', 1, { subject: 'acme', dimensions: { route: `/r${i}` } })
    let stats = meter.stats().usage
    expect(stats.pending).toBe(10)
    expect(stats.dropped).toBe(0)
    // Plain lines may use the last 10%, then nothing more fits.
    for (let i = 0; i < 5; i++) meter.record('api-calls', 2, { subject: `other-${i}` })
    stats = meter.stats().usage
    expect(stats.pending).toBe(10)
    expect(stats).toMatchObject({ dropped: 5, droppedUnits: 10 })
    expect(errors.filter((event) => event.error.code === 'usage_dropped')).toHaveLength(1)
    await meter.flush()
    expect(ingest.total('acme', 'api-calls')).toBe(20)
  })
})

describe('persistence', () => {
  it('resends what a crashed process left, with the same ids, losing nothing recorded before the last persist', async () => {
    const storage = createMemoryStorage()
    const first = client({ storage, usage: { persistIntervalMs: 1000, flushIntervalMs: 60_000 } })
    first.record('api-calls', 4, { subject: 'acme' })
    first.record('api-calls', 1, { subject: 'globex', dimensions: { region: 'eu' } })
    await fx.clock.advance(1000)
    // The process dies here: no close(). A new one starts on the same storage.
    const second = client({ storage })
    await second.flush()
    expect(ingest.total('acme', 'api-calls')).toBe(4)
    expect(ingest.total('globex', 'api-calls')).toBe(1)
    expect(second.stats().usage.pending).toBe(0)
  })

  it('a journal written while a line is open holds every record summed into it, and when the last one was', async () => {
    const storage = createMemoryStorage()
    const first = client({ storage, usage: { persistIntervalMs: 1000, flushIntervalMs: 60_000 } })
    first.record('api-calls', 4, { subject: 'acme' })
    await fx.clock.advance(300)
    first.record('api-calls', 1, { subject: 'acme' })
    await fx.clock.advance(300)
    first.record('api-calls', 2, { subject: 'acme', resource: 'project:p1' })
    const last = fx.clock.platform.now()
    await fx.clock.advance(400) // persisted: one open line of 7
    first.record('api-calls', 3, { subject: 'acme' })
    await fx.clock.advance(1000) // persisted again: the same line, now 10
    // The process dies here: no close(). A new one starts on the same storage.
    const second = client({ storage })
    await second.flush()
    expect(ingest.total('acme', 'api-calls')).toBe(10)
    const lines = ingest.received.flatMap((batch) => batch.lines)
    expect(lines.map((line) => [line.amount, line.resource])).toEqual([
      [8, undefined],
      [2, 'project:p1'],
    ])
    expect(lines[0]!.end).toBe(last + 400)
    expect(lines[1]!.end).toBe(last)
  })

  it('a batch in flight at the crash is resent with its batch id and counted once', async () => {
    const storage = createMemoryStorage()
    const first = client({ storage, usage: { flushIntervalMs: 1000 } })
    ingest.script.push('store-then-500')
    first.record('api-calls', 6, { subject: 'acme' })
    await fx.clock.advance(1000)
    await fx.clock.advance(1000)
    const second = client({ storage })
    await second.flush()
    expect(ingest.received).toHaveLength(2)
    expect(ingest.received[1]!.batch).toBe(ingest.received[0]!.batch)
    expect(ingest.total('acme', 'api-calls')).toBe(6)
  })

  it('a restored line is sealed: new records go to a new line, so nothing is hidden behind a duplicate id', async () => {
    const storage = createMemoryStorage()
    const first = client({ storage, usage: { flushIntervalMs: 1000 } })
    first.record('api-calls', 5, { subject: 'acme' })
    await fx.clock.advance(1000) // persisted at 5 (timer), then sent at 5
    first.record('api-calls', 3, { subject: 'acme' })
    await fx.clock.advance(1000)
    const second = client({ storage })
    second.record('api-calls', 2, { subject: 'acme' })
    await second.flush()
    expect(ingest.total('acme', 'api-calls')).toBe(10)
  })

  it('close() during an outage persists everything by its deadline and resolves, and the next start sends it', async () => {
    const storage = createMemoryStorage()
    const first = createEntitlements({
      metering,
      server: { url: SERVER, revocationIntervalMs: 0 },
      keys: fx.server.issuer.jwks,
      issuer: SERVER,
      audience: 'app',
      platform: fx.clock.platform,
      storage,
    })
    ingest.script.push('hang')
    first.record('api-calls', 9, { subject: 'acme' })
    const closing = first.close({ deadlineMs: 2000 })
    await fx.clock.advance(2000)
    expect(await closing).toEqual({ sent: 0, persisted: 1, dropped: 0 })
    first.record('api-calls', 1, { subject: 'acme' })
    expect(first.stats().usage).toMatchObject({ dropped: 1, droppedUnits: 1 })
    const second = client({ storage })
    await second.flush()
    expect(ingest.total('acme', 'api-calls')).toBe(9)
  })

  it('close() with a deadline retries through a network that fails some requests, and uses the time it was given', async () => {
    const meter = client({ usage: { backoff: { initialMs: 500, maxMs: 1000 } } })
    ingest.script.push({ status: 503 }, 'network', { status: 503 })
    meter.record('api-calls', 4, { subject: 'acme' })
    const closing = meter.close({ deadlineMs: 6000 })
    await fx.clock.advance(6000)
    expect(await closing).toEqual({ sent: 1, persisted: 0, dropped: 0 })
    expect(ingest.total('acme', 'api-calls')).toBe(4)
  })

  it('close() sends what is queued when the server is up', async () => {
    const meter = client()
    meter.record('api-calls', 3, { subject: 'acme' })
    expect(await meter.close()).toEqual({ sent: 1, persisted: 0, dropped: 0 })
    expect(ingest.total('acme', 'api-calls')).toBe(3)
  })

  it('reports an unreadable journal and keeps it under another key instead of losing it', async () => {
    const storage: EntitlementStorage = createMemoryStorage()
    await storage.set('entitle:usage', '{not json')
    const meter = client({ storage })
    meter.record('api-calls', 1, { subject: 'acme' })
    await meter.flush()
    expect(errors.some((event) => event.error.code === 'storage_failed')).toBe(true)
    expect(await storage.get('entitle:usage.unreadable')).toBe('{not json')
    expect(ingest.total('acme', 'api-calls')).toBe(1)
  })
})

describe('keepalive flush (a page being hidden)', () => {
  it('persists first, then sends with keepalive within the 64 KiB budget', async () => {
    const storage = createMemoryStorage()
    const meter = client({ storage })
    for (let i = 0; i < 2000; i++) meter.record('api-calls', 1, { subject: `customer-${i}` })
    const result = await meter.flush({ keepalive: true })
    const sent = ingest.received
    expect(sent.length).toBeGreaterThan(0)
    expect(sent.every((batch) => batch.keepalive)).toBe(true)
    expect(sent.reduce((sum, batch) => sum + batch.bytes, 0)).toBeLessThanOrEqual(64 * 1024)
    expect(result.pending).toBe(2000 - result.sent)
    expect(result.pending).toBeGreaterThan(0)
    // The journal is this client's own, under its id: a storage may be shared by several writers.
    const [key] = await storage.keys!('entitle:usage:')
    const journal = JSON.parse((await storage.get(key!))!) as { lines: unknown[] }
    expect(journal.lines).toHaveLength(result.pending)
    await meter.flush()
    expect(ingest.stored.size).toBe(2000)
  })
})

describe('entitle/browser: flushOnPageHide', () => {
  it('sends with keepalive when the page is hidden or unloaded, and stops when asked', async () => {
    const { flushOnPageHide } = await import('../../src/browser/index.js')
    const win = new EventTarget()
    const doc = Object.assign(new EventTarget(), { visibilityState: 'visible' })
    const meter = client()
    const stop = flushOnPageHide(meter, { window: win, document: doc })
    meter.record('api-calls', 1, { subject: 'acme' })
    doc.dispatchEvent(new Event('visibilitychange'))
    await fx.clock.idle()
    expect(ingest.received).toHaveLength(0)
    doc.visibilityState = 'hidden'
    doc.dispatchEvent(new Event('visibilitychange'))
    await fx.clock.idle()
    expect(ingest.received).toMatchObject([{ keepalive: true }])
    meter.record('api-calls', 1, { subject: 'acme' })
    win.dispatchEvent(new Event('pagehide'))
    await fx.clock.idle()
    expect(ingest.received).toHaveLength(2)
    stop()
    meter.record('api-calls', 1, { subject: 'acme' })
    win.dispatchEvent(new Event('pagehide'))
    await fx.clock.idle()
    expect(ingest.received).toHaveLength(2)
    expect(ingest.total('acme', 'api-calls')).toBe(2)
  })
})
