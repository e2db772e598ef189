import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { SERVICE, startTestServer, type TestServer } from '../server/helpers.js'
import { runWorker } from './run.js'

// The rule for process exit: nothing the client runs in the background keeps a Node process alive, its event
// stream included. A script exits when its own work is done; a server stays up on its own listener.
let server: TestServer
beforeEach(async () => {
  server = await startTestServer({
    get now() {
      return Date.now()
    },
  })
})
afterEach(async () => {
  await server.close()
})

describe('process exit', () => {
  it('a script with an open event stream exits by itself once its checks are done, without close()', async () => {
    await server.purchase('acme', 'team')
    const started = Date.now()
    const ran = await runWorker({
      server: { url: server.url, apiKey: SERVICE, events: true },
      keysUrl: new URL('/.well-known/jwks.json', server.url).href,
      issuer: server.url,
      audience: 'acme-editor',
      subject: 'acme',
      storageDir: mkdtempSync(join(tmpdir(), 'entitle-exit-')),
      // The stream is open before the check answers, and stays open after it.
      steps: [{ wait: 300 }, { check: 'export' }, { wait: 300 }],
    })
    expect(ran.stderr).toBe('')
    expect(ran.killed).toBe(false)
    expect(ran.said).toContainEqual({ step: 'check', allowed: true, reason: 'granted', source: 'fresh' })
    // The worker's own kill timer is 60 s: it ended on its own, at once.
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(ran.code).toBe(0)
  })
})
