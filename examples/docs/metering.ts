// Metering, against the reference license server (`npm run server`; ENTITLE_SERVICE_KEY from its secrets.env).
import { createEntitlements, metering } from 'entitle'
import { createFileStorage } from 'entitle/node'

const LICENSE_SERVER = process.env.LICENSE_SERVER ?? 'http://127.0.0.1:8787'

// Once per process. Usage goes to the same license server; unsent usage is journaled in the same storage.
export const entitlements = createEntitlements({
  server: { url: LICENSE_SERVER, apiKey: process.env.ENTITLE_SERVICE_KEY },
  keys: new URL('/.well-known/jwks.json', LICENSE_SERVER),
  issuer: LICENSE_SERVER,
  audience: 'acme-editor',
  storage: createFileStorage(process.env.ENTITLE_STATE_DIR ?? '.entitle'),
  usage: { flushIntervalMs: 5_000, persistIntervalMs: 1_000 },
  // record(), consume() and the meter come with this plug-in: a client made without it only checks.
  metering,
})

// Guard each API call by the customer's monthly cap, then count it: the next check already sees it.
export async function search(customerId: string): Promise<string> {
  const decision = await entitlements.check('api-calls', { subject: customerId, amount: 1 })
  if (!decision.allowed)
    return `over the cap of ${decision.limit} until ${new Date(decision.resetsAt ?? 0).toISOString()}`
  entitlements.record('api-calls', 1, { subject: customerId, dimensions: { endpoint: 'search' } })
  return `ok, ${(decision.remaining ?? 1) - 1} left`
}

// On shutdown: send what is queued within a deadline and journal the rest for the next start. Never throws.
export function flushOnShutdown(signal: NodeJS.Signals = 'SIGTERM'): void {
  process.once(signal, async () => {
    const { sent, persisted, dropped } = await entitlements.close({ deadlineMs: 5_000 })
    console.log(
      `usage at shutdown: ${sent} lines sent, ${persisted} kept for the next start, ${dropped} dropped`,
    )
  })
}

// Run as a script: two searches, then what a server does on SIGTERM, so the usage reaches the license server.
flushOnShutdown()
console.log(await search('acme'))
console.log(await search('acme'))
process.kill(process.pid, 'SIGTERM')
