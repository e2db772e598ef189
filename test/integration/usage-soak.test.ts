import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createEntitlements, createMemoryStorage, metering } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'
import { seeded } from '../helpers.js'

type Failure = 'error500' | 'store-then-500' | 'reset' | 'store-then-reset' | 'hang' | 'too-many'

/**
 * A real usage endpoint on loopback that fails 30% of requests in six ways, half of them after storing the batch
 * (the answer is lost, so the client must resend and the server must count once). It counts each line id once.
 */
function flakyIngest(seed: number) {
  const random = seeded(seed)
  const seen = new Set<string>()
  const totals = new Map<string, number>()
  const failures: Record<Failure, number> = {
    error500: 0,
    'store-then-500': 0,
    reset: 0,
    'store-then-reset': 0,
    hang: 0,
    'too-many': 0,
  }
  let requests = 0
  let duplicates = 0
  const store = (lines: Array<{ id: string; subject: string; metric: string; amount: number }>) => {
    for (const line of lines) {
      if (seen.has(line.id)) {
        duplicates++
        continue
      }
      seen.add(line.id)
      const key = `${line.subject}/${line.metric}`
      totals.set(key, (totals.get(key) ?? 0) + line.amount)
    }
  }
  const server = createServer(async (req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/v1/revocations') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"revoked":[]}')
      return
    }
    let text = ''
    for await (const chunk of req) text += chunk
    requests++
    const { lines } = JSON.parse(text) as { lines: Parameters<typeof store>[0] }
    const roll = random()
    const fail: Failure | undefined =
      roll < 0.06
        ? 'error500'
        : roll < 0.12
          ? 'store-then-500'
          : roll < 0.17
            ? 'reset'
            : roll < 0.22
              ? 'store-then-reset'
              : roll < 0.26
                ? 'hang'
                : roll < 0.3
                  ? 'too-many'
                  : undefined
    if (fail) failures[fail]++
    if (fail === 'store-then-500' || fail === 'store-then-reset') store(lines)
    switch (fail) {
      case 'error500':
      case 'store-then-500':
        res.writeHead(500, { 'content-type': 'application/problem+json' }).end('{"title":"down"}')
        return
      case 'reset':
      case 'store-then-reset':
        req.socket.destroy()
        return
      case 'hang':
        return // never answers: the client's timeout fires
      case 'too-many':
        res.writeHead(429, { 'retry-after': '0', 'content-type': 'application/problem+json' }).end('{}')
        return
      default:
        store(lines)
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ accepted: lines.length, at: Date.now() }))
    }
  })
  return {
    server,
    totals,
    failures,
    get requests() {
      return requests
    },
    get duplicates() {
      return duplicates
    },
    get lines() {
      return seen.size
    },
  }
}

const CUSTOMERS = 1000
const METRICS = 20
const RECORDS = 1_000_000

let ingest: ReturnType<typeof flakyIngest>
let url: string
beforeAll(async () => {
  ingest = flakyIngest(20261125)
  await new Promise<void>((resolve) => ingest.server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(ingest.server.address() as AddressInfo).port}`
})
afterAll(() => {
  ingest.server.closeAllConnections()
  ingest.server.close()
})

describe('usage soak: a million records against a server that fails 30% of requests', () => {
  it('delivers every unit exactly once, per customer and metric', { timeout: 120_000 }, async () => {
    const issuer = await createTestIssuer({ issuer: url, audience: 'soak' })
    const storage = createMemoryStorage()
    const client = createEntitlements({
      metering,
      server: { url, revocationIntervalMs: 0, timeoutMs: 250 },
      keys: issuer.jwks,
      issuer: url,
      audience: 'soak',
      storage,
      usage: {
        flushIntervalMs: 10,
        maxBatchLines: 250,
        maxInFlight: 2,
        // Room for every line the run can make (100 chunks x 1,000 keys): on a loaded machine delivery can fall far
        // behind recording, and this test is about exactly-once, not about the (separately tested) overflow.
        maxQueuedLines: 150_000,
        persistIntervalMs: 50,
        backoff: { initialMs: 5, maxMs: 50 },
      },
    })
    const expected = new Map<string, number>()
    const amounts = seeded(7)
    // Each chunk of 10,000 records touches 50 customers x 20 metrics, moving on by 10 customers a chunk, so that
    // records aggregate as they would in an app, and every customer is covered.
    for (let chunk = 0; chunk < RECORDS / 10_000; chunk++) {
      for (let i = 0; i < 10_000; i++) {
        const subject = `customer-${(chunk * 10 + (i % 50)) % CUSTOMERS}`
        const metric = `metric-${Math.floor(i / 50) % METRICS}`
        const amount = 1 + Math.floor(amounts() * 3)
        client.record(metric, amount, { subject })
        const key = `${subject}/${metric}`
        expected.set(key, (expected.get(key) ?? 0) + amount)
      }
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    let flushes = 0
    while (client.stats().usage.pending > 0 && flushes < 1000) {
      await client.flush()
      flushes++
    }
    const result = await client.close()
    const stats = client.stats().usage

    expect(stats).toMatchObject({ recorded: RECORDS, dropped: 0, setAside: 0, pending: 0 })
    expect(result).toMatchObject({ persisted: 0, dropped: 0 })
    expect(expected.size).toBe(CUSTOMERS * METRICS)
    // The server's de-duplicated totals equal the client's, exactly, for every customer and metric.
    expect(ingest.totals.size).toBe(expected.size)
    for (const [key, units] of expected)
      expect({ key, units: ingest.totals.get(key) }).toEqual({ key, units })
    // Every failure mode happened, and some batches arrived twice: the run proved what it claims to.
    for (const count of Object.values(ingest.failures)) expect(count).toBeGreaterThan(0)
    expect(ingest.duplicates).toBeGreaterThan(0)
    expect(stats.retried).toBeGreaterThan(0)
    expect(stats.sent).toBe(ingest.lines)
    console.log(
      `usage soak: ${RECORDS} records, ${ingest.lines} lines, ${ingest.requests} requests, ` +
        `${stats.retried} retries, ${ingest.duplicates} duplicate lines ignored, failures ${JSON.stringify(ingest.failures)}`,
    )
  })
})
