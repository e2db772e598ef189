import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createEntitlements, EntitlementError, type ErrorEvent } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'

// A license server that dies under an open event stream: the client says so in its own words, keeps the runtime's
// error as the cause, and reconnects.
let server: Server | undefined
afterEach(() => {
  server?.closeAllConnections()
  server?.close()
})

describe('an event stream cut off', () => {
  it('is reported as the stream cut off, the runtime error kept as cause, and reconnected', async () => {
    let opened = 0
    server = createServer((req, res) => {
      if (req.url?.startsWith('/v1/events')) {
        opened++
        res.writeHead(200, { 'content-type': 'text/event-stream' })
        res.write(': hello\n\n')
        // The process dies: the connection goes with no end to the response.
        setTimeout(() => res.socket?.destroy(), 50)
        return
      }
      res.writeHead(503).end()
    })
    await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const issuer = await createTestIssuer()
    for (const fetching of ['node:http', 'fetch'] as const) {
      const errors: ErrorEvent[] = []
      const client = createEntitlements({
        server: { url, apiKey: 'svc', events: true, revocationIntervalMs: 0 },
        keys: issuer.jwks,
        issuer: issuer.issuer,
        audience: issuer.audience,
        ...(fetching === 'fetch' ? { platform: { fetch: (input, init) => fetch(input, init) } } : {}),
      })
      client.on('error', (event) => errors.push(event))
      const before = opened
      // The stream opens at the client's first use.
      client.checkSync('export', { subject: 'acme' })
      await expect
        .poll(() => errors.filter((e) => e.during === 'events').length, { timeout: 5000 })
        .toBeGreaterThan(0)
      const event = errors.find((e) => e.during === 'events')!
      expect(event.error).toBeInstanceOf(EntitlementError)
      expect(event.error.code).toBe('server_unavailable')
      expect(event.error.message).toBe(
        'the event stream was cut off (the license server went away or closed the connection); reconnecting',
      )
      expect(event.error.cause).toBeDefined()
      await expect.poll(() => opened - before, { timeout: 5000 }).toBeGreaterThan(1)
      await client.close()
    }
  })
})
