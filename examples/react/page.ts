// The page of the React example, rendered on the server and hydrated in the browser: what the plan allows, with a
// gate on single sign-on that an upgrade opens without a reload.

import { Entitled, useEntitlement, useEntitlements } from 'entitle/react'
import { createElement as h } from 'react'

function Plan() {
  const { status, plan } = useEntitlements()
  return h('p', null, 'License: ', h('span', { id: 'plan' }, status === 'loaded' ? plan : status))
}

function Export() {
  const decision = useEntitlement('export')
  return h(
    'li',
    null,
    'Export: ',
    h('span', { id: 'export' }, decision.allowed ? 'allowed' : decision.reason),
  )
}

export function Page() {
  return h(
    'main',
    null,
    h('h1', null, 'Acme Editor'),
    h(Plan),
    h(
      'ul',
      null,
      h(Export),
      h(
        'li',
        null,
        'Single sign-on: ',
        h(
          'span',
          { id: 'sso' },
          h(
            Entitled,
            {
              feature: 'sso',
              loading: '…',
              fallback: (decision) => `upgrade to ${decision.upgrade?.plan ?? 'a higher plan'}`,
            },
            'on',
          ),
        ),
      ),
    ),
  )
}
