/**
 * Token format versions. `1`: everything before per-resource grants. `2`: a feature may be granted per resource
 * (`per`), a restriction an older SDK would not enforce (it would grant the feature account-wide), so a token that
 * says it must be `v: 2`, which older SDKs reject. A server issues `1` whenever a token needs nothing of `2`.
 */
export const FORMAT_VERSIONS = [1, 2] as const

/** Whether any feature is granted per resource: what only format version 2 can say. */
export function needsVersion2(features: Readonly<Record<string, unknown>>): boolean {
  for (const name in features) {
    const feature = features[name]
    if (typeof feature === 'object' && feature !== null && (feature as { per?: unknown }).per !== undefined)
      return true
  }
  return false
}

/**
 * The lowest format version that can say what `features` grants: `2` when a feature is granted per resource, else
 * `1`, so a customer who needs nothing new keeps a token every SDK version reads.
 */
export function formatVersionFor(features: Readonly<Record<string, unknown>>): 1 | 2 {
  return needsVersion2(features) ? 2 : 1
}
