import { type FeatureClaim, usagePeriodSchema } from '../core/claims.js'
import { formatVersionFor } from '../core/format-version.js'
import type { Algorithm } from '../core/keys.js'
import { currentWindowEnd } from '../core/period.js'
import { claimProblems, signEntitlementToken } from '../protocol/sign.js'
import { CliError, EXIT, loadSigningKey, parseDuration, parseMoment, readJson, writeText } from './io.js'

export const ISSUE_HELP = `entitle issue: sign an entitlement token

Usage: entitle issue --key PRIVATE_KEY --iss ISSUER --aud AUDIENCE --sub CUSTOMER [claims] [--out FILE]

The claims come from a file, from flags, or both (flags win). Everything is validated against the same schema
the SDK verifies with, before anything is signed.

  --key FILE          private key: a JWK with "d" or a PKCS#8 PEM (see entitle keygen)
  --claims FILE       JSON: either the "ent" claim or a whole payload with iss/sub/aud/ent
  --iss, --aud, --sub issuer, audience (product), subject (customer)
  --plan ID           plan id (default: from --claims, else "default")
  --feature NAME      a boolean feature; repeat for more
  --addon NAME        an add-on; repeat for more
  --limit NAME=N      a numeric limit, e.g. seats=10; repeat for more
  --cap NAME=N/PERIOD a metered cap, e.g. api-calls=10000/month (hour, day, week, month, year, total)
  --term-end WHEN     license term end: an ISO date or a duration from now (365d)
  --grace DURATION    grace after the term end, e.g. 14d
  --trial-end WHEN    trial end: an ISO date or a duration (14d)
  --devices A,B       device fingerprints the token is bound to
  --max-devices N     how many devices may be active
  --regions A,B       allowed regions (ISO 3166: DE, US-CA)
  --deny-regions A,B  denied regions
  --expires DURATION  token lifetime (default 30d); for an offline license, the term end plus grace
  --kid ID            key id in the header (default: the JWK's kid)
  --alg ALG           signing algorithm (default: from the key)
  --out FILE          write the token to FILE instead of stdout`

export interface IssueOptions {
  key?: string
  claims?: string
  iss?: string
  aud?: string
  sub?: string
  plan?: string
  feature?: string[]
  addon?: string[]
  limit?: string[]
  cap?: string[]
  'term-end'?: string
  grace?: string
  'trial-end'?: string
  devices?: string
  'max-devices'?: string
  regions?: string
  'deny-regions'?: string
  expires?: string
  kid?: string
  alg?: string
  out?: string
}

const list = (value: string | undefined) =>
  value === undefined
    ? undefined
    : value
        .split(',')
        .map((item) => item.trim())
        .filter(Boolean)

function count(value: string, flag: string): number {
  if (!/^\d+$/.test(value)) throw new CliError(`${flag} needs a whole number (got ${value})`, EXIT.usage)
  return Number(value)
}

function pair(value: string, flag: string): [string, string] {
  const at = value.indexOf('=')
  if (at <= 0) throw new CliError(`${flag} takes NAME=VALUE (got ${value})`, EXIT.usage)
  return [value.slice(0, at), value.slice(at + 1)]
}

type Payload = Record<string, unknown> & {
  ent: Record<string, unknown> & { features: Record<string, unknown> }
}

/** Builds the payload from the claims file and the flags, flags last. */
export function buildPayload(options: IssueOptions, nowSec: number): Payload {
  const file =
    options.claims === undefined ? {} : (readJson(options.claims, 'claims file') as Record<string, unknown>)
  if (typeof file !== 'object' || file === null || Array.isArray(file)) {
    throw new CliError('the claims file must hold a JSON object', EXIT.input, 'file_invalid')
  }
  const { ent: fileEnt, ...fileClaims } = 'ent' in file ? file : { ent: file }
  const ent = { v: 1, ...(fileEnt as Record<string, unknown>) } as unknown as Payload['ent']
  ent.features = { ...((ent.features as Record<string, unknown> | undefined) ?? {}) }
  // A file that names no version gets the lowest that says what it grants (2 for a per-resource feature).
  if ((fileEnt as { v?: unknown } | undefined)?.v === undefined) ent.v = formatVersionFor(ent)
  const feature = (name: string): FeatureClaim => {
    const current = ent.features[name]
    const next: FeatureClaim = typeof current === 'object' && current !== null ? { ...current } : {}
    ent.features[name] = next
    return next
  }

  if (options.plan !== undefined) ent.plan = { ...(ent.plan as object | undefined), id: options.plan }
  ent.plan ??= { id: 'default' }
  for (const name of options.feature ?? []) if (ent.features[name] === undefined) ent.features[name] = true
  if (options.addon)
    ent.addons = [...new Set([...((ent.addons as string[] | undefined) ?? []), ...options.addon])]
  for (const spec of options.limit ?? []) {
    const [name, value] = pair(spec, '--limit')
    feature(name).limit = count(value, '--limit')
  }
  for (const spec of options.cap ?? []) {
    const [name, value] = pair(spec, '--cap')
    const [limit = '', period = ''] = value.split('/')
    const parsed = usagePeriodSchema.safeParse(period)
    if (!parsed.success)
      throw new CliError(
        `--cap period must be hour, day, week, month, year or total (got ${period})`,
        EXIT.usage,
      )
    const resetsAt = currentWindowEnd(parsed.data, nowSec * 1000, nowSec * 1000)
    feature(name).cap = {
      limit: count(limit, '--cap'),
      period: parsed.data,
      used: 0,
      ...(resetsAt === undefined ? {} : { resetsAt: Math.floor(resetsAt / 1000) }),
    }
  }
  const term = { ...(ent.term as object | undefined) } as Record<string, number>
  if (options['term-end'] !== undefined)
    term.expiresAt = parseMoment(options['term-end'], '--term-end', nowSec)
  if (options.grace !== undefined) {
    if (term.expiresAt === undefined) throw new CliError('--grace needs a term end (--term-end)', EXIT.usage)
    term.graceEndsAt = term.expiresAt + parseDuration(options.grace, '--grace')
  }
  if (options['trial-end'] !== undefined)
    term.trialEndsAt = parseMoment(options['trial-end'], '--trial-end', nowSec)
  if (Object.keys(term).length > 0) ent.term = term
  const devices = { ...(ent.devices as object | undefined) } as Record<string, unknown>
  if (options.devices !== undefined) devices.fingerprints = list(options.devices)
  if (options['max-devices'] !== undefined) devices.max = count(options['max-devices'], '--max-devices')
  if (Object.keys(devices).length > 0) ent.devices = devices
  const regions = { ...(ent.regions as object | undefined) } as Record<string, unknown>
  if (options.regions !== undefined) regions.allow = list(options.regions)
  if (options['deny-regions'] !== undefined) regions.deny = list(options['deny-regions'])
  if (Object.keys(regions).length > 0) ent.regions = regions

  const iat = nowSec
  const payload: Payload = {
    ...fileClaims,
    ...(options.iss === undefined ? {} : { iss: options.iss }),
    ...(options.aud === undefined ? {} : { aud: options.aud }),
    ...(options.sub === undefined ? {} : { sub: options.sub }),
    iat,
    exp: iat + parseDuration(options.expires ?? '30d', '--expires'),
    jti: crypto.randomUUID(),
    ent,
  }
  return payload
}

export async function issue(options: IssueOptions, nowSec: number): Promise<string> {
  if (options.key === undefined) throw new CliError('--key is required (a private key file)', EXIT.usage)
  const payload = buildPayload(options, nowSec)
  // A missing required claim is a missing flag, said as such: not "sub: Invalid input".
  for (const [flag, claim, what] of [
    ['--iss', 'iss', 'the issuer'],
    ['--aud', 'aud', 'the audience (your product)'],
    ['--sub', 'sub', 'the customer'],
  ] as const)
    if (payload[claim] === undefined)
      throw new CliError(`${flag} is required: ${what} (or "${claim}" in the --claims file)`, EXIT.usage)
  const problems = claimProblems(payload)
  if (problems.length > 0)
    throw new CliError(
      `these claims would not verify:\n  ${problems.join('\n  ')}`,
      EXIT.problems,
      'claims_invalid',
    )
  const signing = await loadSigningKey(options.key, options.alg as Algorithm | undefined, options.kid)
  const token = await signEntitlementToken(payload, signing)
  if (options.out !== undefined) {
    writeText(options.out, `${token}\n`)
    return `wrote ${options.out} (${token.length} characters, expires ${new Date((payload.exp as number) * 1000).toISOString()})\n`
  }
  return `${token}\n`
}
