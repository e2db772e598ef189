// The React example in the browser: hydrates the page the server rendered, from the snapshot the server rendered
// it with, then answers from its own verified license. When the server says the license changed (an upgrade), it
// refreshes, and the gated parts re-render with no reload.

import { createEntitlements, type EntitlementsSnapshot } from 'entitle'
import { createLocalStorage } from 'entitle/browser'
import { EntitlementsProvider } from 'entitle/react'
import { createElement as h } from 'react'
import { hydrateRoot } from 'react-dom/client'
import { Page } from './page.js'

const entitlements = createEntitlements({
  token: async () => (await fetch('/license')).text(),
  keys: new URL('/.well-known/jwks.json', location.origin),
  issuer: 'https://license.example.com',
  audience: 'acme-editor',
  storage: createLocalStorage(),
})
// The page's server pushes "your license changed"; the client fetches the new one at once.
new EventSource('/events').addEventListener('license', () => void entitlements.refresh())

const snapshot = JSON.parse(document.getElementById('entitlements')!.textContent!) as EntitlementsSnapshot
hydrateRoot(
  document.getElementById('root')!,
  h(EntitlementsProvider, { client: entitlements, snapshot }, h(Page)),
  {
    onRecoverableError: (error) => console.error(`hydration: ${String(error)}`),
  },
)
