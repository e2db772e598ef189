import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { LIVE_CLOCK, SERVICE, startTestServer, type TestServer } from '../server/helpers.js'
import { runWorker, type Said } from './run.js'

// Credits across a kill -9: an app burning AI credits against the reference server is killed while its usage is
// in flight, and started again on the same folder. The server's ledger ends equal to what the app consumed: no
// credit lost, none burned twice.

let server: TestServer
beforeAll(async () => {
  server = await startTestServer(LIVE_CLOCK, 600)
  await server.purchase('acme', 'team', { addons: ['ai-studio'] })
})
afterAll(() => server.close())

async function spent(): Promise<number> {
  const response = await server.admin('GET', '/customers/acme/credits')
  return ((await response.json()) as { balances: Record<string, { spent: number }> }).balances['ai-credits']!
    .spent
}

const allowedIn = (said: Said[]) =>
  said.flatMap((line) => (line.answers as string[] | undefined) ?? []).filter((a) => a === 'allowed').length

describe('credits across a kill -9', () => {
  it('killed mid-burn (lines in flight, some sent), restarted: the ledger burned exactly what was consumed, once', async () => {
    const app = {
      server: { url: server.url, apiKey: SERVICE, events: false },
      keysUrl: new URL('/.well-known/jwks.json', server.url).href,
      issuer: server.url,
      audience: 'acme-editor',
      subject: 'acme',
      storageDir: mkdtempSync(join(tmpdir(), 'entitle-crash-credits-')),
      usage: { flushIntervalMs: 60_000, persistIntervalMs: 100 },
    }
    // 30 completions burned on the server (flushed), 30 more only journaled, then the process is killed.
    const first = await runWorker(
      {
        ...app,
        steps: [
          { consume: 'ai-completion', times: 30 },
          { flush: true },
          { consume: 'ai-completion', times: 30 },
          { hang: true },
        ],
      },
      { killAfterLines: 4, killDelayMs: 300 },
    )
    expect(first.stderr).toBe('')
    expect(first.killed).toBe(true)
    // Half the burn reached the server before the kill; the other half is in the dead process's journal.
    expect(await spent()).toBe(150)
    // Started again on the same folder: the journal's lines go out with their ids; 40 more completions.
    const second = await runWorker({
      ...app,
      steps: [{ consume: 'ai-completion', times: 40 }, { flush: true }, { close: 3000 }],
    })
    expect(second.stderr).toBe('')
    const consumed = allowedIn(first.said) + allowedIn(second.said)
    expect(consumed).toBe(100)
    const response = await server.admin('GET', '/customers/acme/credits')
    const ledger = (await response.json()) as {
      balances: Record<string, { available: number; spent: number }>
      burns: Array<{ line: string; burned: number }>
    }
    expect(ledger.balances['ai-credits']).toMatchObject({ spent: 500, available: 500 })
    // Each line burned once.
    const perLine = new Map<string, number>()
    for (const burn of ledger.burns) perLine.set(burn.line, (perLine.get(burn.line) ?? 0) + 1)
    expect([...perLine.values()].every((count) => count === 1)).toBe(true)
  })
})
