export type {
  ChangeEvent,
  CheckContext,
  ClientEvents,
  ClientStats,
  CreditBalanceView,
  CreditHold,
  DecisionSummaryEvent,
  EntitlementsClient,
  EntitlementsClientOptions,
  EntitlementsSnapshot,
  ErrorEvent,
  FailurePolicy,
  FeatureDecisionCounts,
  GrantView,
  HeldLease,
  LeaseChangeEvent,
  LeaseEvents,
  LeaseOptions,
  LeaseRefusal,
  LeaseRefusalReason,
  LeaseResult,
  Metering,
  RecordContext,
  ReserveOptions,
  ReserveResult,
  ThresholdEvent,
} from './client/index.js'
export { createEntitlements } from './client/index.js'
export { metering } from './client/metering.js'
export type { EntitlementChange } from './core/changes.js'
export { diffEntitlements } from './core/changes.js'
export type { CheckOptions } from './core/check.js'
export { checkEntitlement } from './core/check.js'
export type {
  CreditBalance,
  CreditCost,
  CreditGrant,
  DevicePolicy,
  EntitlementClaim,
  EntitlementTokenClaims,
  FeatureClaim,
  PerResource,
  Plan,
  Pool,
  RegionPolicy,
  ResourceGrant,
  Term,
  UpgradeHint,
  UsageCap,
  UsagePeriod,
} from './core/claims.js'
export { entitlementTokenClaimsSchema } from './core/claims.js'
export { decide } from './core/decide.js'
export type { DecisionsByFeature } from './core/decide-all.js'
export { decideAll } from './core/decide-all.js'
export type {
  CreditDecision,
  Decision,
  DecisionContext,
  DecisionReason,
  DecisionSource,
  LevelNumbers,
  ResourceDecision,
} from './core/decision.js'
export type {
  CapUsage,
  CreditBalanceModel,
  CreditCostModel,
  CreditGrantModel,
  Entitlements,
  Feature,
  FeatureCap,
  FeaturePer,
  FeaturePool,
  RegionRule,
  ResourceGrantModel,
  TermModel,
} from './core/entitlements.js'
export type { EntitlementErrorCode } from './core/errors.js'
export { EntitlementError, isEntitlementError } from './core/errors.js'
export { featureTerm } from './core/feature-term.js'
export type { Algorithm, KeySource, RemoteJwksOptions } from './core/keys.js'
export type { Lease, LeaseClaim } from './core/lease.js'
export { isVerifiedLease } from './core/lease.js'
export { currentWindowEnd } from './core/period.js'
export { ENTITLEMENT_TOKEN_TYPE, LEASE_TOKEN_TYPE, REVOCATION_LIST_TYPE } from './core/token-type.js'
export type { EntitlementVerifier, RevocationList, VerifyOptions } from './core/verify.js'
export { createEntitlementVerifier, verifyEntitlementToken } from './core/verify.js'
export type { KvNamespaceLike, KvStorageOptions } from './platform/kv-storage.js'
export { createKvStorage } from './platform/kv-storage.js'
export type { Platform } from './platform/platform.js'
export { defaultPlatform } from './platform/platform.js'
export type { EntitlementStorage, StorageOwners } from './platform/storage.js'
export { createMemoryStorage } from './platform/storage.js'
export type { LicenseServerOptions } from './transport/license-server-client.js'
export type { BackoffOptions } from './transport/retry.js'
export type {
  CreditSpendRequest,
  MemoryUsageStore,
  UsageCounterRequest,
  UsageCounterStore,
} from './usage/counter-store.js'
export { createMemoryUsageStore } from './usage/counter-store.js'
export type { CloseResult, FlushResult, UsageLine, UsageOptions, UsageStats } from './usage/types.js'
