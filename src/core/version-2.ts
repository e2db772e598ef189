/*
 * What only a token of format version 2 needs, loaded as one piece (`load-version-2.ts`, held by
 * `version-2-code.ts`): the rules of its claims, the read model of what it grants, and the decisions that read it.
 */
export { claimsV2 as claims } from './claims-check-v2.js'
export { decideCredits } from './decide-credits.js'
export { leaseAllows } from './decide-lease.js'
export { decideForResource } from './decide-resource.js'
export { creditsOf, perModel, poolsOf } from './read-model-v2.js'
