// The React example on the server: verifies the customer's license with its own client, renders the page from a
// snapshot of it, and puts the snapshot in the page for the browser to hydrate from (a Next.js-style loader would
// do the same in getServerSideProps or a server component).

import type { EntitlementsClient } from 'entitle'
import { EntitlementsProvider } from 'entitle/react'
import { createElement as h } from 'react'
import { renderToString } from 'react-dom/server'
import { Page } from './page.js'

export async function renderPage(client: EntitlementsClient, subject?: string): Promise<string> {
  await client.load(subject)
  const snapshot = client.snapshot(subject)
  const html = renderToString(h(EntitlementsProvider, { client, subject, snapshot }, h(Page)))
  // `<` escaped: the JSON sits inside a script element.
  const json = JSON.stringify(snapshot).replace(/</g, '\\u003c')
  return `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>Acme Editor: entitlements in React</title></head>
  <body>
    <div id="root">${html}</div>
    <script id="entitlements" type="application/json">${json}</script>
    <script type="module" src="/app.js"></script>
  </body>
</html>`
}
