// AI credits against the reference license server (LICENSE_SERVER): hooli bought Team with the AI studio add-on,
// 1 000 AI credits a month. A completion costs 5 credits; tokens cost 1 per 1 000.
import { createEntitlements, metering } from 'entitle'

const url = process.env.LICENSE_SERVER ?? 'http://127.0.0.1:8787'
const client = createEntitlements({
  server: { url, apiKey: process.env.ENTITLE_SERVICE_KEY },
  keys: new URL('/.well-known/jwks.json', url),
  issuer: url,
  audience: 'acme-editor',
  metering,
})
const subject = 'hooli'
const left = () => client.balance('ai-credits', { subject })?.available

const first = await client.check('ai-completion', { subject })
console.log(
  `a completion: ${first.reason}, costs ${first.credits?.cost} of ${first.credits?.available} credits`,
)

// An LLM call whose cost is known only afterwards: hold an estimate, then commit what it used.
const call = await client.reserve('tokens', { subject, amount: 8_000 })
if (!call.reserved) throw new Error(`no credits for the call: ${call.decision.reason}`)
console.log(`held ${call.hold.credits} credits for the call, ${left()} left to spend`)
await call.hold.commit(5_200)
console.log(`the call used 5 200 tokens: ${left()} left`)

let completions = 0
while ((await client.consume('ai-completion', { subject })).allowed) completions++
const last = await client.check('ai-completion', { subject })
console.log(`${completions} completions later: ${last.reason}, ${last.credits?.available} left`)
await client.close()
