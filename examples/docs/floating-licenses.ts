// Two workstations and one floating seat, against the reference license server (LICENSE_SERVER): initech bought
// the Starter plan with one floating desktop seat (the catalog's floating-desktop add-on).
import { createEntitlements } from 'entitle'

const url = process.env.LICENSE_SERVER ?? 'http://127.0.0.1:8787'
const options = {
  server: { url, apiKey: process.env.ENTITLE_SERVICE_KEY },
  keys: new URL('/.well-known/jwks.json', url),
  issuer: url,
  audience: 'acme-editor',
}
const first = createEntitlements(options)
const second = createEntitlements(options)

const before = await first.check('desktop', { subject: 'initech' })
console.log(`workstation-1 before a lease: ${before.reason}`)
const seat = await first.lease('desktop', { subject: 'initech', holder: 'workstation-1' })
if (!seat.acquired) throw new Error(`no seat: ${seat.reason}`)
console.log(`workstation-1 holds the seat: ${(await first.check('desktop', { subject: 'initech' })).reason}`)

const busy = await second.lease('desktop', { subject: 'initech', holder: 'workstation-2' })
if (!busy.acquired)
  console.log(
    `workstation-2: ${busy.reason}, ${busy.inUse} of ${busy.limit} in use, a seat may free in ${Math.round(((busy.retryAt ?? 0) - Date.now()) / 1000)} s`,
  )

await seat.release()
const next = await second.lease('desktop', { subject: 'initech', holder: 'workstation-2' })
console.log(`after the release, workstation-2: ${next.acquired ? 'holds the seat' : next.reason}`)
await Promise.all([first.close(), second.close()])
