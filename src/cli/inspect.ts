import { existsSync } from 'node:fs'
import { decodeJwt, decodeProtectedHeader } from 'jose'
import { describeClaimIssues } from '../core/claim-issues.js'
import { entitlementTokenClaimsSchema } from '../core/claims.js'
import { decideAll } from '../core/decide-all.js'
import type { Decision, DecisionContext } from '../core/decision.js'
import { type Entitlements, toEntitlements } from '../core/entitlements.js'
import { EntitlementError, type EntitlementErrorCode } from '../core/errors.js'
import { mentionsVersion2 } from '../core/format-version.js'
import type { Algorithm } from '../core/keys.js'
import { loadVersion2 } from '../core/load-version-2.js'
import { createEntitlementVerifier } from '../core/verify.js'
import { CliError, EXIT, loadVerificationKeys, readText } from './io.js'

export const INSPECT_HELP = `entitle inspect: show what is inside a token and what the SDK would decide now

Usage: entitle inspect TOKEN|FILE|- [--key KEYS] [--iss ISSUER] [--aud AUDIENCE] [context] [--json]

  TOKEN|FILE|-   the token itself, a file holding it, or - for standard input
  --key KEYS     verify with: a PEM or JWK / JWK Set file, or a JWK Set URL
  --iss, --aud   expected issuer and audience (default: taken from the token, and said so)
  --alg A,B      algorithms to allow (default EdDSA,Ed25519,ES256)
  --at WHEN      decide as of this ISO time instead of now
  --roles A,B    --region CODE  --device FINGERPRINT   decide for this user, region and device
  --json         machine-readable output

Exit status: 0 the token verified (or, with no --key, decoded) with no problem; 1 problems were found; 2 bad
usage; 3 a file or key could not be read.`

export interface InspectOptions {
  key?: string
  iss?: string
  aud?: string
  alg?: string
  at?: string
  roles?: string
  region?: string
  device?: string
  json?: boolean
}

interface Problem {
  code: EntitlementErrorCode | 'not_verified' | 'issuer_unchecked' | 'region_unset'
  message: string
}

/** Notes about what was not checked: they do not make the exit status 1. */
const NOTES = new Set<Problem['code']>(['not_verified', 'issuer_unchecked', 'region_unset'])

/** A compact JWS: three base64url segments (the verifier checks the rest). */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

export interface Inspection {
  header: Record<string, unknown> | undefined
  claims: Record<string, unknown> | undefined
  verified: boolean
  problems: Problem[]
  decisions: Decision[]
  at: number
}

function readToken(input: string): string {
  if (input === '-') return readText(input, 'token file').trim()
  // A token is the token (one with a "Bearer " prefix too: the verifier says what is wrong with it); a path that
  // exists is read; anything else is said to be neither, rather than taken for a token.
  const text = input.trim()
  if (COMPACT_JWS.test(text) || /^bearer\s/i.test(text)) return text
  if (input.length < 4096 && existsSync(input)) return readText(input, 'token file').trim()
  throw new CliError(
    `${input.length > 80 ? `${input.slice(0, 80)}…` : input} is neither a token (three base64url segments) nor a file that exists`,
    EXIT.input,
    'file_unreadable',
  )
}

function decodeUnverified(token: string): Pick<Inspection, 'header' | 'claims'> {
  try {
    return {
      header: decodeProtectedHeader(token) as Record<string, unknown>,
      claims: decodeJwt(token) as Record<string, unknown>,
    }
  } catch {
    return { header: undefined, claims: undefined }
  }
}

export async function inspectToken(input: string, options: InspectOptions): Promise<Inspection> {
  const token = readToken(input)
  const at = options.at === undefined ? Date.now() : Date.parse(options.at)
  if (Number.isNaN(at)) throw new CliError(`--at must be an ISO time (got ${options.at})`, EXIT.usage)
  const { header, claims } = decodeUnverified(token)
  const problems: Problem[] = []
  let entitlements: Entitlements | undefined
  let verified = false

  if (options.key !== undefined) {
    const issuer = options.iss ?? (typeof claims?.iss === 'string' ? claims.iss : undefined)
    const aud =
      typeof claims?.aud === 'string' ? claims.aud : Array.isArray(claims?.aud) ? claims.aud[0] : undefined
    const audience = options.aud ?? (typeof aud === 'string' ? aud : undefined)
    if (options.iss === undefined || options.aud === undefined) {
      problems.push({
        code: 'issuer_unchecked',
        message: 'issuer/audience were taken from the token itself: pass --iss and --aud to check them',
      })
    }
    try {
      const verifier = createEntitlementVerifier({
        keys: loadVerificationKeys(options.key),
        issuer: issuer ?? '(missing)',
        audience: audience ?? '(missing)',
        now: () => at,
        ...(options.alg === undefined ? {} : { algorithms: options.alg.split(',') as Algorithm[] }),
      })
      entitlements = await verifier.verify(token)
      verified = true
    } catch (error) {
      if (error instanceof EntitlementError) problems.push({ code: error.code, message: error.message })
      else if (error instanceof TypeError)
        throw new CliError(`cannot verify with ${options.key}: ${error.message}`, EXIT.input, 'key_invalid')
      else throw error
    }
  } else {
    problems.push({ code: 'not_verified', message: 'no --key given: the signature was not checked' })
  }

  if (header === undefined || claims === undefined) {
    if (
      !problems.some((problem) => problem.code === 'token_malformed' || problem.code === 'token_too_large')
    ) {
      problems.push({ code: 'token_malformed', message: 'the token is not a decodable JWT' })
    }
  } else if (entitlements === undefined) {
    // Not verified (no key, or it failed): still show what the token says, from its unverified claims.
    const parsed = entitlementTokenClaimsSchema.safeParse(claims)
    if (parsed.success) {
      // The read model of format version 2's grants is code loaded on first need, as the verifier loads it.
      if (mentionsVersion2(parsed.data)) await loadVersion2()
      entitlements = toEntitlements(parsed.data, {
        alg: String(header.alg),
        kid: header.kid as string | undefined,
      })
    } else if (!problems.some((problem) => problem.code === 'claims_invalid')) {
      const what = describeClaimIssues(parsed.error.issues).slice(0, 5).join('; ')
      problems.push({ code: 'claims_invalid', message: `the token claims are invalid: ${what}` })
    }
  }
  // The verifier allows some clock skew; a decision does not. Say so rather than print "OK" beside "expired".
  if (verified && entitlements !== undefined && at >= entitlements.expiresAt)
    problems.push({
      code: 'token_expired',
      message: `the token expired at ${iso(entitlements.expiresAt)}: its signature verifies within the clock tolerance, but every decision is expired`,
    })

  const context: DecisionContext = {
    ...(options.roles === undefined ? {} : { roles: options.roles.split(',') }),
    ...(options.region === undefined ? {} : { region: options.region }),
    ...(options.device === undefined ? {} : { device: options.device }),
  }
  const decisions = entitlements ? Object.values(decideAll(entitlements, context, at)) : []
  if (options.region === undefined && decisions.some((decision) => decision.reason === 'region_blocked'))
    problems.push({
      code: 'region_unset',
      message: 'some features depend on the region: pass --region CODE (DE, US-CA) to decide for one',
    })
  return { header, claims, verified, problems, decisions, at }
}

const iso = (ms: number | undefined) =>
  ms === undefined ? '—' : new Date(ms).toISOString().replace('.000Z', 'Z')

function relative(ms: number, at: number): string {
  const seconds = Math.round((ms - at) / 1000)
  const abs = Math.abs(seconds)
  const [value, unit] =
    abs >= 86_400
      ? [Math.round(abs / 86_400), 'd']
      : abs >= 3600
        ? [Math.round(abs / 3600), 'h']
        : abs >= 60
          ? [Math.round(abs / 60), 'min']
          : [abs, 's']
  return seconds >= 0 ? `in ${value} ${unit}` : `${value} ${unit} ago`
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows
    .map((row) => `  ${row.map((cell, column) => cell.padEnd(widths[column]!)).join('  ')}`.trimEnd())
    .join('\n')
}

/** The human-readable report. */
export function formatInspection(result: Inspection): string {
  const { header, claims, at } = result
  const out: string[] = []
  const time = (seconds: unknown) =>
    typeof seconds === 'number' ? `${iso(seconds * 1000)} (${relative(seconds * 1000, at)})` : '—'
  if (header && claims) {
    const ent = (claims.ent ?? {}) as Record<string, unknown>
    const plan = (ent.plan ?? {}) as Record<string, unknown>
    const term = (ent.term ?? {}) as Record<string, number | undefined>
    out.push('Token')
    out.push(
      table([
        ['type', String(header.typ ?? '—')],
        ['algorithm', `${String(header.alg)}${header.kid ? `, key id ${String(header.kid)}` : ''}`],
        ['subject', String(claims.sub ?? '—')],
        ['issuer', String(claims.iss ?? '—')],
        ['audience', Array.isArray(claims.aud) ? claims.aud.join(', ') : String(claims.aud ?? '—')],
        ['token id', String(claims.jti ?? '—')],
        ['issued', time(claims.iat)],
        ['not before', time(claims.nbf)],
        ['expires', time(claims.exp)],
        [
          'plan',
          `${String(plan.id ?? '—')}${plan.name ? ` (${String(plan.name)})` : ''}${plan.tier !== undefined ? `, tier ${String(plan.tier)}` : ''}`,
        ],
        ['add-ons', Array.isArray(ent.addons) && ent.addons.length > 0 ? ent.addons.join(', ') : '—'],
        ['term ends', time(term.expiresAt)],
        ['grace ends', time(term.graceEndsAt)],
        ['trial ends', time(term.trialEndsAt)],
      ]),
    )
  }
  out.push('')
  const expired = result.problems.some((problem) => problem.code === 'token_expired')
  out.push(
    `Verification: ${result.verified ? (expired ? 'signature and claims OK, but the token has EXPIRED' : 'OK, signature and claims verified') : 'NOT VERIFIED'}`,
  )
  if (result.decisions.length > 0) {
    out.push('')
    out.push(
      `Features, as the SDK would decide at ${iso(at)}${result.verified ? '' : ' (from UNVERIFIED claims)'}`,
    )
    const rows = [['feature', 'decision', 'reason', 'limit', 'used', 'remaining', 'resets', 'ends']]
    for (const d of result.decisions) {
      const show = (n: number | undefined) => (n === undefined ? '' : String(n))
      rows.push([
        d.feature,
        d.allowed ? 'ALLOWED' : 'DENIED',
        d.reason,
        show(d.limit),
        show(d.used),
        show(d.remaining),
        d.resetsAt === undefined ? '' : iso(d.resetsAt),
        d.expiresAt === undefined ? '' : iso(d.expiresAt),
      ])
    }
    out.push(table(rows))
  }
  if (result.problems.length > 0) {
    out.push('')
    out.push('Problems')
    out.push(table(result.problems.map((problem) => [problem.code, problem.message])))
  }
  return `${out.join('\n')}\n`
}

/** Problems that make the exit status 1; the notes about what was not checked do not. */
export function hasProblems(result: Inspection): boolean {
  return result.problems.some((problem) => !NOTES.has(problem.code))
}
