// Entitlements as OpenFeature flags, against the reference license server (`npm run server`).
import { OpenFeature } from '@openfeature/server-sdk'
import { createEntitlements } from 'entitle'
import { EntitlementsProvider } from 'entitle/openfeature'

const LICENSE_SERVER = process.env.LICENSE_SERVER ?? 'http://127.0.0.1:8787'

export const entitlements = createEntitlements({
  server: { url: LICENSE_SERVER, apiKey: process.env.ENTITLE_SERVICE_KEY, events: true },
  keys: new URL('/.well-known/jwks.json', LICENSE_SERVER),
  issuer: LICENSE_SERVER,
  audience: 'acme-editor',
})

// Entitlements behind the OpenFeature API the team already uses: a flag per feature, the customer as targetingKey.
await OpenFeature.setProviderAndWait(new EntitlementsProvider(entitlements))
const flags = OpenFeature.getClient()

export async function planSummary(customerId: string, roles: string[]) {
  const context = { targetingKey: customerId, roles }
  return {
    export: await flags.getBooleanValue('export', false, context),
    seatsLeft: await flags.getNumberValue('seats', 0, context),
    sso: await flags.getBooleanDetails('sso', false, context),
  }
}

// Run as a script: what a Team customer's admin sees, then the process exits by itself.
const summary = await planSummary('globex', ['admin'])
console.log(summary.export, summary.seatsLeft, summary.sso.variant, summary.sso.flagMetadata.upgradePlan)
