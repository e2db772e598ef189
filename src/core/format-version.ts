/**
 * Token format versions. `1`: everything before per-resource grants. `2`: a feature may be granted per resource
 * (`per`), a license or a feature may float (`pools`, `pool`: a lease is needed to use it), and features may cost
 * prepaid credits (`credits`). All are restrictions an older SDK would not enforce (it would grant the feature
 * account-wide, without a lease, or without spending), so a
 * token that says them must be `v: 2`, which older SDKs reject. A server issues `1` whenever a token needs nothing
 * of `2`.
 */
export const FORMAT_VERSIONS = [1, 2] as const

/** The parts of an `ent` claim that decide its format version. */
export interface VersionedClaim {
  readonly features: Readonly<Record<string, unknown>>
  readonly pools?: Readonly<Record<string, unknown>> | undefined
  readonly pool?: unknown
  readonly credits?: Readonly<Record<string, unknown>> | undefined
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null

/** Whether the claim grants anything only format version 2 can say: a feature per resource, a pool, credits. */
export function needsVersion2(ent: VersionedClaim): boolean {
  if (ent.pool !== undefined || (isObject(ent.pools) && Object.keys(ent.pools).length > 0)) return true
  if (isObject(ent.credits) && Object.keys(ent.credits).length > 0) return true
  const { features } = ent
  for (const name in features) {
    const feature = features[name]
    if (isObject(feature) && (feature.per !== undefined || feature.pool !== undefined)) return true
  }
  return false
}

/**
 * Whether a token payload says anything of format version 2: `v: 2`, or any of the fields only version 2 has
 * (`pools`, `pool`, `credits`, a feature's `per` or `pool`), well-formed or not. Such a payload is checked by the
 * rules of version 2 (code loaded first: `load-version-2.ts`), which find what is wrong with those fields as the
 * zod schema does; any other is checked by version 1's alone, which the fields it lacks cannot change.
 */
export function mentionsVersion2(payload: unknown): boolean {
  const ent = isObject(payload) ? payload.ent : undefined
  if (!isObject(ent)) return false
  if (ent.v === 2 || ent.pools !== undefined || ent.pool !== undefined || ent.credits !== undefined)
    return true
  const { features } = ent
  if (!isObject(features)) return false
  // for-in, not Object.keys: this runs for every token verified, and a list of names per token is garbage.
  for (const name in features) {
    const feature = features[name]
    if (isObject(feature) && (feature.per !== undefined || feature.pool !== undefined)) return true
  }
  return false
}

/** The first pool named (by `ent.pool` or a feature's `pool`) that `ent.pools` does not define, if any. */
export function unknownPool(ent: VersionedClaim): string | undefined {
  const pools = isObject(ent.pools) ? ent.pools : {}
  const defined = (name: unknown) => typeof name === 'string' && Object.hasOwn(pools, name)
  if (ent.pool !== undefined && !defined(ent.pool)) return String(ent.pool)
  for (const name in ent.features) {
    const feature = ent.features[name]
    if (isObject(feature) && feature.pool !== undefined && !defined(feature.pool)) return String(feature.pool)
  }
  return undefined
}

/**
 * The lowest format version that can say what `ent` grants: `2` when a feature is granted per resource, a pool
 * floats or credits are held, else `1`, so a customer who needs nothing new keeps a token every SDK version reads.
 *
 * @example
 * ```ts
 * const ent = { plan: { id: 'team' }, features: { export: true } }
 * formatVersionFor(ent) // 1
 * ```
 */
export function formatVersionFor(ent: VersionedClaim): 1 | 2 {
  return needsVersion2(ent) ? 2 : 1
}
