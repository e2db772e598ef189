import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { createTestIssuer } from '../../src/testing.js'
import { runWorker, type Said } from './run.js'

// What a kill -9 at a bad moment must not do, with real processes on the built package and file storage.
const DAY = 86_400_000

describe('trusted time across a kill -9', () => {
  it('keeps the time of the first check: a token issued 10 days ago, checked, killed 1.5 s later, the clock set back 3 days: clock_rollback', async () => {
    const issuer = await createTestIssuer({ now: () => Date.now() - 10 * DAY })
    const token = await issuer.issue({ features: { export: true } }, { expiresInSec: 365 * 86_400 })
    const base = {
      token,
      keys: issuer.jwks,
      issuer: issuer.issuer,
      audience: issuer.audience,
      storageDir: mkdtempSync(join(tmpdir(), 'entitle-crash-time-')),
    }
    const first = await runWorker(
      { ...base, steps: [{ check: 'export' }, { hang: true }] },
      {
        killAfterLines: 1,
        killDelayMs: 1500,
      },
    )
    expect(first.said[0]).toMatchObject({ allowed: true, reason: 'granted' })
    expect(first.killed).toBe(true)
    const second = await runWorker({ ...base, clockOffsetMs: -3 * DAY, steps: [{ check: 'export' }] })
    expect(second.said).toEqual([
      { step: 'check', allowed: false, reason: 'clock_rollback', source: 'cache' },
    ])
  })
})

/** A usage endpoint in this process: counts each line id once, as the license server does, and can go down. */
async function usageSink() {
  const { createServer } = await import('node:http')
  const lines = new Map<string, number>()
  let received = 0
  const state = { down: false }
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk) => {
      body += chunk
    })
    req.on('end', () => {
      if (state.down) {
        res.writeHead(503).end()
        return
      }
      const batch = JSON.parse(body) as { lines: Array<{ id: string; amount: number }> }
      for (const line of batch.lines) {
        received += line.amount
        if (!lines.has(line.id)) lines.set(line.id, line.amount)
      }
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ lines: batch.lines.map(({ id }) => ({ id, status: 'accepted' })) }))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    state,
    /** Units counted once per line id, as the server bills them. */
    total: () => [...lines.values()].reduce((sum, amount) => sum + amount, 0),
    /** Units in every line received, a line sent twice counted twice. */
    received: () => received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

describe('a metered cap across a kill -9', () => {
  async function desktopApp(usage: { url: string } | undefined) {
    const issuer = await createTestIssuer()
    const resetsAt = Math.floor(Date.now() / 1000) + 10 * 86_400
    const token = await issuer.issue(
      { features: { 'api-calls': { cap: { limit: 5, period: 'month', used: 0, resetsAt } } } },
      { expiresInSec: 365 * 86_400 },
    )
    return {
      token,
      keys: issuer.jwks,
      issuer: issuer.issuer,
      audience: issuer.audience,
      storageDir: mkdtempSync(join(tmpdir(), 'entitle-crash-cap-')),
      // The journal's persist interval is a second: the kill comes well inside it.
      ...(usage ? { usage: { ...usage, flushIntervalMs: 60_000, persistIntervalMs: 1000 } } : {}),
    }
  }
  const allowedIn = (said: Said[]) =>
    said.flatMap((line) => (line.answers as string[] | undefined) ?? []).filter((a) => a === 'allowed').length

  for (const [name, sync] of [
    ['consume()', false],
    ['consumeSync()', true],
  ] as const) {
    it(`${name} with a cap of 5, killed at once, again and again: never more than 5 in all, and never billed more than used`, async () => {
      const sink = await usageSink()
      try {
        const app = await desktopApp({ url: sink.url })
        let allowed = 0
        for (let run = 0; run < 3; run++) {
          // Every other start is offline: the usage endpoint is down.
          sink.state.down = run % 2 === 1
          const ran = await runWorker(
            { ...app, steps: [{ consume: 'api-calls', times: 5, sync }, { hang: true }] },
            { killAfterLines: 1 },
          )
          expect(ran.stderr).toBe('')
          allowed += allowedIn(ran.said)
        }
        expect(allowed).toBe(5)
        // A last, clean start sends what the journals hold: the server counts at most what was used.
        sink.state.down = false
        const last = await runWorker({ ...app, steps: [{ flush: true }, { close: 2000 }] })
        expect(last.stderr).toBe('')
        expect(sink.total()).toBeLessThanOrEqual(5)
      } finally {
        await sink.close()
      }
    })
  }

  it('a license file with nowhere to send usage holds its cap across kills too (it counts only in the process)', async () => {
    const app = await desktopApp(undefined)
    let allowed = 0
    for (let run = 0; run < 3; run++) {
      const ran = await runWorker(
        { ...app, steps: [{ consume: 'api-calls', times: 4, sync: run === 1 }, { hang: true }] },
        { killAfterLines: 1 },
      )
      allowed += allowedIn(ran.said)
    }
    expect(allowed).toBe(5)
  })

  it('a clean close gives back what was reserved and not used: a restart allows exactly what is left', async () => {
    const app = await desktopApp(undefined)
    const first = await runWorker({ ...app, steps: [{ consume: 'api-calls', times: 2 }, { close: 0 }] })
    expect(allowedIn(first.said)).toBe(2)
    const second = await runWorker({ ...app, steps: [{ consume: 'api-calls', times: 5 }] })
    expect(allowedIn(second.said)).toBe(3)
  })
})

describe('several processes on one folder', () => {
  it('4 workers share one folder through an outage, are killed at random or closed, and started again: every unit arrives once', async () => {
    const sink = await usageSink()
    try {
      const issuer = await createTestIssuer()
      const token = await issuer.issue({ features: { 'api-calls': true } }, { expiresInSec: 365 * 86_400 })
      const app = {
        token,
        keys: issuer.jwks,
        issuer: issuer.issuer,
        audience: issuer.audience,
        storageDir: mkdtempSync(join(tmpdir(), 'entitle-crash-shared-')),
        usage: { url: sink.url, flushIntervalMs: 50, persistIntervalMs: 100 },
      }
      const random = (() => {
        let seed = 7
        return () => {
          seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
          return seed / 2 ** 31
        }
      })()
      // The outage: 4 workers at once, 25 units each; two are killed (after the journal's interval, at a random
      // moment), two close cleanly with the server down (their usage is journaled).
      sink.state.down = true
      const first = await Promise.all(
        [0, 1, 2, 3].map((n) =>
          n < 2
            ? runWorker(
                { ...app, steps: [{ record: 'api-calls', times: 25 }, { wait: 300 }, { hang: true }] },
                { killAfterLines: 2, killDelayMs: Math.floor(random() * 200) },
              )
            : runWorker({
                ...app,
                steps: [{ record: 'api-calls', times: 25 }, { wait: 300 }, { close: 200 }],
              }),
        ),
      )
      expect(first.map((run) => run.stderr)).toEqual(['', '', '', ''])
      expect(sink.total()).toBe(0)
      // Still down: two new workers take over what the four left, and are killed in turn.
      const second = await Promise.all(
        [0, 1].map(() =>
          runWorker(
            { ...app, steps: [{ wait: 400 }, { hang: true }] },
            { killAfterLines: 1, killDelayMs: 100 },
          ),
        ),
      )
      expect(second.map((run) => run.stderr)).toEqual(['', ''])
      expect(sink.total()).toBe(0)
      // The server is back: one worker starts, takes over everything and sends it, each line once.
      sink.state.down = false
      const last = await runWorker({ ...app, steps: [{ flush: true }, { close: 2000 }] })
      expect(last.stderr).toBe('')
      expect(sink.total()).toBe(100)
      expect(sink.received()).toBeGreaterThanOrEqual(100)
    } finally {
      await sink.close()
    }
  })
})
