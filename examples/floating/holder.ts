// One workstation of the floating-license demo, as a terminal would run it: it takes the only seat of acme's
// "desktop" pool, or waits for it (retrying when the server says a seat may come free), then keeps it, renewing on
// its own. Prints one JSON line per thing that happens. `node examples/.build/floating-holder.js URL KEY HOLDER`.
import { createEntitlements } from 'entitle'
import { releaseLeasesOnExit } from 'entitle/node'

const [url, apiKey, holder] = process.argv.slice(2)
if (!url || !apiKey || !holder) throw new Error('usage: floating-holder <server url> <service key> <holder>')

const say = (event: string, data: Record<string, unknown> = {}) =>
  console.log(JSON.stringify({ holder, event, at: Date.now(), ...data }))

const client = createEntitlements({
  server: { url, apiKey },
  keys: new URL('/.well-known/jwks.json', url),
  issuer: url,
  audience: 'acme-editor',
})
// Ctrl-C gives the seat back at once; a kill -9 cannot, and the seat comes free when the lease runs out.
releaseLeasesOnExit(client)

for (;;) {
  const seat = await client.lease('desktop', { subject: 'acme', holder, metadata: { host: holder } })
  if (seat.acquired) {
    say('held', { lease: seat.id, expiresAt: seat.lease.expiresAt })
    seat.on('renewed', ({ lease }) => say('renewed', { expiresAt: lease.expiresAt }))
    seat.on('degraded', ({ error }) => say('degraded', { error: error.code }))
    seat.on('lost', ({ reason }) => say('lost', { reason }))
    break
  }
  say('waiting', { reason: seat.reason, inUse: seat.inUse, limit: seat.limit, retryAt: seat.retryAt })
  // Ask again when the server said a seat may come free (at most 5 s from now, at least half a second).
  const wait = Math.min(5000, Math.max(500, (seat.retryAt ?? Date.now() + 1000) - Date.now()))
  await new Promise((resolve) => setTimeout(resolve, wait))
}

// The app at work: it checks the floating feature every second, and says so when the answer changes. (This timer
// also keeps the process running: the client's own timers never hold a process open.)
let last: string | undefined
const check = () => {
  const decision = client.checkSync('desktop', { subject: 'acme' })
  if (decision.reason !== last) say('check', { allowed: decision.allowed, reason: decision.reason })
  last = decision.reason
}
check()
setInterval(check, 1000)
