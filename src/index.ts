export type { EntitlementChange } from './changes.js'
export { diffEntitlements } from './changes.js'
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
export type {
  ChangeEvent,
  CheckContext,
  ClientEvents,
  ClientStats,
  DecisionSummaryEvent,
  EntitlementsClient,
  EntitlementsClientOptions,
  EntitlementsSnapshot,
  ErrorEvent,
  FailurePolicy,
  FeatureDecisionCounts,
  RecordContext,
} from './client/index.js'
export { createEntitlements } from './client/index.js'
export { decide } from './decide.js'
export type { DecisionsByFeature } from './decide-all.js'
export { decideAll } from './decide-all.js'
export type { Decision, DecisionContext, DecisionReason, DecisionSource } from './decision.js'
export type { Entitlements, Feature, FeatureCap, RegionRule } from './entitlements.js'
export type { EntitlementErrorCode } from './errors.js'
export { EntitlementError, isEntitlementError } from './errors.js'
export type { Algorithm, KeySource, RemoteJwksOptions } from './keys.js'
export type { LicenseServerOptions } from './license-server.js'
export { currentWindowEnd } from './period.js'
export type { Platform } from './platform.js'
export { defaultPlatform } from './platform.js'
export type { BackoffOptions } from './retry.js'
export type { EntitlementStorage } from './storage.js'
export { createMemoryStorage } from './storage.js'
export { ENTITLEMENT_TOKEN_TYPE, REVOCATION_LIST_TYPE } from './token-type.js'
export type { CloseResult, FlushResult, UsageLine, UsageOptions, UsageStats } from './usage/types.js'
export type { MemoryUsageStore, UsageCounterRequest, UsageCounterStore } from './usage-store.js'
export { createMemoryUsageStore } from './usage-store.js'
export type { EntitlementVerifier, RevocationList, VerifyOptions } from './verify.js'
export { createEntitlementVerifier, verifyEntitlementToken } from './verify.js'
