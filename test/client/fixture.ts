import { type SetupServer, setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest'
import {
  createEntitlements,
  type EntitlementsClient,
  type EntitlementsClientOptions,
  metering,
} from '../../src/index.js'
import type { TestIssuer } from '../../src/testing.js'
import { fakeLicenseServer, manualPlatform, SERVER } from './harness.js'

export type ManualClock = ReturnType<typeof manualPlatform>
export type FakeLicenseServer = Awaited<ReturnType<typeof fakeLicenseServer>>

/** What each client test gets: a manual clock, a fake license server on msw, and clients made against them. */
export interface ClientFixture {
  readonly msw: SetupServer
  /** This test's clock: moves only when the test says. */
  readonly clock: ManualClock
  /** This test's license server. */
  readonly server: FakeLicenseServer
  /** A client of the fake server on the manual clock, with metering, closed (deadline 0) when the test ends. */
  client(overrides?: Partial<EntitlementsClientOptions>): EntitlementsClient
  /** A single-tenant client of `issuer`'s tokens (the app's own token, or a function that reads it). */
  singleTenant(
    issuer: TestIssuer,
    token: EntitlementsClientOptions['token'],
    overrides?: Partial<EntitlementsClientOptions>,
  ): EntitlementsClient
}

/**
 * The one setup of the client tests: registers the hooks of a test file (msw listening, a fresh clock and server
 * before each test, every client it made closed after) and returns the fixture, whose fields are this test's.
 */
export function clientFixture(
  defaults: {
    /** How often clients poll the revocation list; 0 (the default here) turns it off. */
    readonly revocationIntervalMs?: number
    /** Called with every client made, before the test sees it. */
    readonly made?: (client: EntitlementsClient) => void
  } = {},
): ClientFixture {
  const msw = setupServer()
  let clock: ManualClock | undefined
  let server: FakeLicenseServer | undefined
  let clients: EntitlementsClient[] = []
  beforeAll(() => msw.listen({ onUnhandledRequest: 'error' }))
  afterAll(() => msw.close())
  beforeEach(async () => {
    msw.resetHandlers()
    clock = manualPlatform()
    server = await fakeLicenseServer(msw, clock)
    clients = []
  })
  afterEach(async () => {
    await Promise.all(clients.map((client) => client.close({ deadlineMs: 0 })))
  })
  return {
    msw,
    get clock() {
      return clock!
    },
    get server() {
      return server!
    },
    client(overrides = {}) {
      const made = createEntitlements({
        server: { url: SERVER, apiKey: 'sk_test', revocationIntervalMs: defaults.revocationIntervalMs ?? 0 },
        keys: server!.issuer.jwks,
        issuer: SERVER,
        audience: 'app',
        platform: clock!.platform,
        // What an app that meters passes; a test of a client that only checks overrides it with `undefined`.
        metering,
        ...overrides,
      })
      defaults.made?.(made)
      clients.push(made)
      return made
    },
    singleTenant(issuer, token, overrides = {}) {
      return this.client({
        server: undefined,
        token,
        keys: issuer.jwks,
        issuer: issuer.issuer,
        audience: issuer.audience,
        ...overrides,
      })
    },
  }
}
