import { createEntitlementVerifier, type Entitlements, isEntitlementError } from 'entitle'
import { createTestIssuer } from 'entitle/testing'

const issuer = await createTestIssuer()
const verifier = createEntitlementVerifier(issuer.verifyOptions)
const token = await issuer.issue(
  { features: { export: true } },
  { issuedAt: Math.floor(Date.now() / 1000) - 7200 },
)
const refreshToken = async (): Promise<Entitlements | undefined> => undefined

export async function load(): Promise<Entitlements | undefined> {
  try {
    return await verifier.verify(token)
  } catch (error) {
    if (isEntitlementError(error, 'token_expired')) return refreshToken()
    throw error
  }
}
