export type { CheckOptions } from './check.js'
export { checkEntitlement } from './check.js'
export type {
  DevicePolicy,
  EntitlementClaim,
  EntitlementTokenClaims,
  FeatureClaim,
  Plan,
  RegionPolicy,
  Term,
  UpgradeHint,
  UsageCap,
  UsagePeriod,
} from './claims.js'
export { entitlementTokenClaimsSchema } from './claims.js'
export { decide } from './decide.js'
export type { Decision, DecisionContext, DecisionReason } from './decision.js'
export type { Entitlements, Feature, FeatureCap, RegionRule } from './entitlements.js'
export type { EntitlementErrorCode } from './errors.js'
export { EntitlementError, isEntitlementError } from './errors.js'
export type { Algorithm, KeySource, RemoteJwksOptions } from './keys.js'
export { currentWindowEnd } from './period.js'
export { ENTITLEMENT_TOKEN_TYPE } from './token-type.js'
export type { EntitlementVerifier, VerifyOptions } from './verify.js'
export { createEntitlementVerifier, verifyEntitlementToken } from './verify.js'
