// The browser example: an embedded app that holds its own license. It verifies the token with WebCrypto, keeps it
// in localStorage, shows what the plan allows, meters searches, and sends the usage when the page goes away.
import { createEntitlements, type Decision, metering } from 'entitle'
import { createLocalStorage, flushOnPageHide } from 'entitle/browser'

const entitlements = createEntitlements({
  // The page's own server hands out its license; a desktop or kiosk app would read or activate one.
  token: async () => (await fetch('/license')).text(),
  keys: new URL('/.well-known/jwks.json', location.origin),
  issuer: 'https://license.example.com',
  audience: 'acme-editor',
  storage: createLocalStorage(),
  usage: { url: location.origin, flushIntervalMs: 60_000 },
  metering,
})
flushOnPageHide(entitlements)

const show = (id: string, decision: Decision) => {
  const element = document.getElementById(id)!
  element.dataset.allowed = String(decision.allowed)
  element.textContent = decision.allowed
    ? `allowed${decision.remaining === undefined ? '' : `, ${decision.remaining} left`}`
    : `denied: ${decision.reason}`
}

async function render(): Promise<void> {
  show('export', await entitlements.check('export'))
  show('sso', await entitlements.check('sso'))
  show('api-calls', await entitlements.check('api-calls', { amount: 1 }))
}

document.getElementById('search')!.addEventListener('click', async () => {
  await entitlements.consume('api-calls')
  await render()
})

await render()
document.getElementById('status')!.textContent = entitlements.entitlements()?.plan.id ?? 'none'
