import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeJwt } from 'jose'
import { beforeAll, describe, expect, it } from 'vitest'
import { runCli } from '../../src/cli/main.js'
import type { EntitlementClaim } from '../../src/core/claims.js'
import { verifyEntitlementToken } from '../../src/index.js'

const CLI = join(process.cwd(), 'dist/cli.js')

/** Runs the built binary, as a user would: the one smoke test, and a token piped into stdin. */
function spawned(args: string[], options: { cwd?: string; input?: string } = {}) {
  const result = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', ...options })
  return { stdout: result.stdout, stderr: result.stderr, status: result.status }
}

/** Runs a command line in this process, in `cwd`: what the binary prints and exits with, without a process. */
async function entitle(args: string[], options: { cwd?: string } = {}) {
  const before = process.cwd()
  if (options.cwd !== undefined) process.chdir(options.cwd)
  try {
    const outcome = await runCli(args)
    return { stdout: outcome.stdout, stderr: outcome.stderr, status: outcome.exitCode }
  } finally {
    process.chdir(before)
  }
}

let dir: string
const jwks = () => JSON.parse(readFileSync(join(dir, 'keys/jwks.json'), 'utf8'))
const verifyOptions = () => ({ keys: jwks(), issuer: 'https://lic.example', audience: 'my-app' })
const issueArgs = ['--iss', 'https://lic.example', '--aud', 'my-app', '--sub', 'globex']

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'entitle-cli-'))
  expect((await entitle(['keygen', '--out', 'keys', '--kid', 'k1'], { cwd: dir })).status).toBe(0)
})

describe('entitle (no command)', () => {
  it('prints help and exits 2 with no command, 0 with --help', async () => {
    expect(await entitle([])).toMatchObject({ status: 2, stdout: expect.stringContaining('Commands:') })
    expect(await entitle(['--help'])).toMatchObject({ status: 0, stdout: expect.stringContaining('keygen') })
  })

  it('exits 2 on an unknown command or flag, naming it', async () => {
    expect(await entitle(['frobnicate'])).toMatchObject({
      status: 2,
      stderr: expect.stringContaining('unknown command "frobnicate"'),
    })
    const result = await entitle(['keygen', '--colour', 'blue'])
    expect(result.status).toBe(2)
    expect(result.stderr).toMatch(/--colour/)
  })

  it.each(['keygen', 'issue', 'inspect'])('has --help for %s', async (command) => {
    expect(await entitle([command, '--help'])).toMatchObject({
      status: 0,
      stdout: expect.stringContaining(`entitle ${command}`),
    })
  })
})

describe('entitle keygen', () => {
  it('writes the key pair, keeps the private files private, and prints the public JWK Set', async () => {
    const out = mkdtempSync(join(tmpdir(), 'entitle-keygen-'))
    const result = await entitle(['keygen', '--out', out])
    expect(result.status).toBe(0)
    const printed = JSON.parse(result.stdout)
    expect(printed).toEqual(JSON.parse(readFileSync(join(out, 'jwks.json'), 'utf8')))
    expect(printed.keys[0]).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' })
    expect(printed.keys[0].kid).toMatch(/^[A-Za-z0-9_-]{43}$/)
    expect(printed.keys[0]).not.toHaveProperty('d')
    expect(statSync(join(out, 'entitle-private.jwk.json')).mode & 0o777).toBe(0o600)
    expect(statSync(join(out, 'entitle-private.pem')).mode & 0o777).toBe(0o600)
    expect(readFileSync(join(out, 'entitle-public.pem'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----/)
  })

  it('says which folder it cannot write, exit 3, with no stack trace', async () => {
    const blocked = join(mkdtempSync(join(tmpdir(), 'entitle-keygen-')), 'a-file')
    writeFileSync(blocked, 'not a folder')
    for (const out of [join(blocked, 'keys'), join(blocked, 'deeper/keys')]) {
      const result = await entitle(['keygen', '--out', out])
      expect(result).toMatchObject({ status: 3, stderr: expect.stringContaining('[file_unwritable]') })
      expect(result.stderr).toContain('cannot write')
      expect(result.stderr).not.toMatch(/at \w+ \(/)
    }
    const scratch = mkdtempSync(join(tmpdir(), 'entitle-issue-'))
    const issued = await entitle(
      [
        'issue',
        '--key',
        join(dir, 'keys/entitle-private.jwk.json'),
        ...issueArgs,
        '--out',
        join(blocked, 't.jwt'),
      ],
      { cwd: scratch },
    )
    expect(issued).toMatchObject({ status: 3, stderr: expect.stringContaining('[file_unwritable]') })
  })

  it('makes ES256 keys on request', async () => {
    const out = mkdtempSync(join(tmpdir(), 'entitle-keygen-'))
    const result = await entitle(['keygen', '--alg', 'ES256', '--out', out])
    expect(JSON.parse(result.stdout).keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256' })
  })

  it('refuses to overwrite keys unless --force, and refuses unknown algorithms', async () => {
    const result = await entitle(['keygen', '--out', 'keys'], { cwd: dir })
    expect(result).toMatchObject({ status: 3, stderr: expect.stringContaining('[file_exists]') })
    expect((await entitle(['keygen', '--alg', 'HS256'], { cwd: dir })).status).toBe(2)
    const scratch = mkdtempSync(join(tmpdir(), 'entitle-keygen-'))
    expect((await entitle(['keygen', '--out', scratch])).status).toBe(0)
    expect((await entitle(['keygen', '--out', scratch, '--force'])).status).toBe(0)
  })
})

describe('entitle issue', () => {
  it('signs a token from flags that the SDK verifies, with exactly what was asked', async () => {
    const args = [
      'issue',
      '--key',
      'keys/entitle-private.jwk.json',
      ...issueArgs,
      '--plan',
      'team',
      '--feature',
      'export',
      '--addon',
      'sso',
      '--limit',
      'seats=10',
      '--cap',
      'api-calls=1000/month',
      '--term-end',
      '2030-01-01T00:00:00Z',
      '--grace',
      '14d',
      '--trial-end',
      '30d',
      '--devices',
      'fp-a,fp-b',
      '--max-devices',
      '2',
      '--regions',
      'US,DE',
      '--deny-regions',
      'US-NY',
      '--expires',
      '1d',
    ]
    const result = await entitle(args, { cwd: dir })
    expect(result.stderr).toBe('')
    expect(result.status).toBe(0)
    const verified = await verifyEntitlementToken(result.stdout.trim(), verifyOptions())
    expect(verified).toMatchObject({
      subject: 'globex',
      keyId: 'k1',
      algorithm: 'EdDSA',
      plan: { id: 'team' },
      addons: ['sso'],
    })
    // Verified above; the claims as signed, to see each flag landed where the format says.
    const ent = decodeJwt(result.stdout.trim()).ent as EntitlementClaim
    expect(ent.features.export).toBe(true)
    expect(ent.features.seats).toEqual({ limit: 10 })
    expect(ent.features['api-calls']).toMatchObject({ cap: { limit: 1000, period: 'month', used: 0 } })
    expect(ent.term).toMatchObject({
      expiresAt: Date.UTC(2030, 0, 1) / 1000,
      graceEndsAt: Date.UTC(2030, 0, 15) / 1000,
    })
    expect(ent.devices).toEqual({ fingerprints: ['fp-a', 'fp-b'], max: 2 })
    expect(ent.regions).toEqual({ allow: ['US', 'DE'], deny: ['US-NY'] })
    expect(verified.expiresAt - verified.issuedAt).toBe(86_400_000)
  })

  it('takes the ent claim, or a whole payload, from a claims file, and lets flags win', async () => {
    writeFileSync(
      join(dir, 'ent.json'),
      JSON.stringify({ plan: { id: 'pro', tier: 3 }, features: { reports: { roles: ['admin'] } } }),
    )
    const fromEnt = await entitle(
      ['issue', '--key', 'keys/entitle-private.pem', '--kid', 'k1', '--claims', 'ent.json', ...issueArgs],
      { cwd: dir },
    )
    expect(fromEnt.status).toBe(0)
    const a = await verifyEntitlementToken(fromEnt.stdout.trim(), verifyOptions())
    expect(a.plan).toEqual({ id: 'pro', tier: 3 })
    expect(a.features.get('reports')?.roles).toEqual(['admin'])

    writeFileSync(
      join(dir, 'payload.json'),
      JSON.stringify({
        iss: 'https://lic.example',
        aud: 'my-app',
        sub: 'initech',
        ent: { plan: { id: 'basic' }, features: {} },
      }),
    )
    const fromPayload = await entitle(
      ['issue', '--key', 'keys/entitle-private.jwk.json', '--claims', 'payload.json', '--plan', 'plus'],
      { cwd: dir },
    )
    const b = await verifyEntitlementToken(fromPayload.stdout.trim(), verifyOptions())
    expect(b).toMatchObject({ subject: 'initech', plan: { id: 'plus' } })
  })

  it('writes a license file with --out', async () => {
    const result = await entitle(
      [
        'issue',
        '--key',
        'keys/entitle-private.jwk.json',
        ...issueArgs,
        '--feature',
        'x',
        '--out',
        'license.jwt',
      ],
      { cwd: dir },
    )
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/^wrote license\.jwt/)
    const token = readFileSync(join(dir, 'license.jwt'), 'utf8').trim()
    expect((await verifyEntitlementToken(token, verifyOptions())).features.has('x')).toBe(true)
  })

  it('refuses claims the SDK would reject, naming where, and signs nothing', async () => {
    writeFileSync(
      join(dir, 'bad.json'),
      JSON.stringify({ plan: { id: 'pro' }, features: { seats: { limit: -1 } } }),
    )
    const result = await entitle(
      ['issue', '--key', 'keys/entitle-private.jwk.json', '--claims', 'bad.json', ...issueArgs],
      { cwd: dir },
    )
    expect(result.status).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain('ent.features.seats.limit')
    expect(result.stderr).toContain('[claims_invalid]')
  })

  it.each([
    [['--iss', 'https://lic.example', '--aud', 'my-app', '--sub', 'x'], 2, '--key is required'],
    [['--key', 'nope.json', ...issueArgs], 3, '[file_unreadable]'],
    [['--key', 'keys/entitle-public.jwk.json', ...issueArgs], 3, '[key_invalid]'],
    [['--key', 'keys/jwks.json', ...issueArgs, '--limit', 'seats'], 2, 'NAME=VALUE'],
    [['--key', 'keys/entitle-private.jwk.json', ...issueArgs, '--cap', 'api=10/fortnight'], 2, 'period'],
    [['--key', 'keys/entitle-private.jwk.json', ...issueArgs, '--expires', 'soon'], 2, 'duration'],
    [['--key', 'keys/entitle-private.jwk.json', ...issueArgs, '--grace', '7d'], 2, '--term-end'],
    [['--key', 'keys/entitle-private.jwk.json', '--aud', 'my-app', '--sub', 'x'], 2, '--iss is required'],
  ])('fails clearly: %j → exit %i', async (args, status, message) => {
    const result = await entitle(['issue', ...args], { cwd: dir })
    expect(result.status).toBe(status)
    expect(result.stderr).toContain(message)
    expect(result.stderr).not.toMatch(/at \w+ \(/)
  })
})

describe('entitle inspect', () => {
  let token: string
  beforeAll(async () => {
    const args = [
      'issue',
      '--key',
      'keys/entitle-private.jwk.json',
      ...issueArgs,
      '--plan',
      'team',
      '--feature',
      'export',
    ]
    token = (
      await entitle([...args, '--limit', 'seats=3', '--regions', 'DE', '--expires', '30d'], {
        cwd: dir,
      })
    ).stdout.trim()
  })
  const keyArgs = ['--key', 'keys/jwks.json', '--iss', 'https://lic.example', '--aud', 'my-app']

  it('shows who the token is for, verifies it, and decides each feature now', async () => {
    const result = await entitle(['inspect', token, ...keyArgs, '--region', 'DE'], { cwd: dir })
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/subject +globex/)
    expect(result.stdout).toMatch(/plan +team/)
    expect(result.stdout).toContain('Verification: OK')
    expect(result.stdout).toMatch(/export +ALLOWED +granted/)
    expect(result.stdout).toMatch(/seats +ALLOWED +granted +3 +0 +3/)
  })

  it('decides for the region, roles and time given', async () => {
    const result = await entitle(['inspect', token, ...keyArgs, '--region', 'FR'], { cwd: dir })
    expect(result.stdout).toMatch(/export +DENIED +region_blocked/)
    const later = await entitle(
      ['inspect', token, ...keyArgs, '--region', 'DE', '--at', '2099-01-01T00:00:00Z'],
      {
        cwd: dir,
      },
    )
    expect(later.status).toBe(1)
    expect(later.stdout).toMatch(/token_expired/)
    expect(later.stdout).toMatch(/export +DENIED +expired/)
  })

  it('reads the token from a file or standard input', async () => {
    writeFileSync(join(dir, 'token.txt'), `${token}\n`)
    expect((await entitle(['inspect', 'token.txt', ...keyArgs], { cwd: dir })).stdout).toContain(
      'Verification: OK',
    )
    // Standard input needs a process of its own: this is also the smoke test of the built binary.
    expect(spawned(['inspect', '-', ...keyArgs], { cwd: dir, input: token })).toMatchObject({
      status: 0,
      stderr: '',
      stdout: expect.stringContaining('Verification: OK'),
    })
  })

  it('reports a tampered token with its error code and exit 1', async () => {
    const [h, p, s] = token.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString())
    claims.ent.plan.id = 'enterprise'
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`
    const result = await entitle(['inspect', forged, ...keyArgs], { cwd: dir })
    expect(result.status).toBe(1)
    expect(result.stdout).toContain('Verification: NOT VERIFIED')
    expect(result.stdout).toMatch(/signature_invalid/)
    expect(result.stdout).toMatch(/from UNVERIFIED claims/)
  })

  it('shows a token of format version 2 from its unverified claims, loading the code for it first', () => {
    // Tampered into a v: 2 token (a per-resource limit), so the signature fails and the claims are shown as they
    // are: the built binary, in a process of its own, has not loaded format version 2's code before this.
    const [h, p, s] = token.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString())
    claims.ent.v = 2
    claims.ent.features.builds = { per: { kind: 'repository', limit: 2 } }
    const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`
    const result = spawned(['inspect', forged, ...keyArgs, '--region', 'DE'], { cwd: dir })
    expect(result.stderr).toBe('')
    expect(result.status).toBe(1)
    expect(result.stdout).toMatch(/signature_invalid/)
    expect(result.stdout).toMatch(/from UNVERIFIED claims/)
    // Decided by format version 2's per-resource step, as a check that names no resource is.
    expect(result.stdout).toMatch(/builds +DENIED +resource_required/)
    expect(result.stdout).toMatch(/seats +ALLOWED +granted +3 +0 +3/)
  })

  it('reports the wrong issuer and says when issuer/audience were not checked', async () => {
    const wrong = await entitle(
      ['inspect', token, '--key', 'keys/jwks.json', '--iss', 'https://other.example', '--aud', 'my-app'],
      { cwd: dir },
    )
    expect(wrong.status).toBe(1)
    expect(wrong.stdout).toMatch(/issuer_invalid/)
    const lax = await entitle(['inspect', token, '--key', 'keys/entitle-public.pem'], { cwd: dir })
    expect(lax.status).toBe(0)
    expect(lax.stdout).toMatch(/issuer_unchecked/)
  })

  it('decodes without a key, saying the signature was not checked', async () => {
    const result = await entitle(['inspect', token], { cwd: dir })
    expect(result.status).toBe(0)
    expect(result.stdout).toMatch(/not_verified/)
  })

  it('reports garbage as token_malformed, exit 1', async () => {
    const result = await entitle(['inspect', 'definitely.not.a-token', ...keyArgs], { cwd: dir })
    expect(result.status).toBe(1)
    expect(result.stdout).toMatch(/token_malformed/)
  })

  it('prints JSON for machines', async () => {
    const result = await entitle(['inspect', token, ...keyArgs, '--region', 'DE', '--json'], { cwd: dir })
    const json = JSON.parse(result.stdout)
    expect(json).toMatchObject({
      verified: true,
      problems: [],
      claims: { sub: 'globex' },
      header: { kid: 'k1' },
    })
    expect(json.decisions.map((d: { feature: string; allowed: boolean }) => [d.feature, d.allowed])).toEqual([
      ['export', true],
      ['seats', true],
    ])
  })

  it('exits 3 when the key file cannot be read, and 2 with no token', async () => {
    expect(await entitle(['inspect', token, '--key', 'missing.pem'], { cwd: dir })).toMatchObject({
      status: 3,
    })
    expect(await entitle(['inspect'], { cwd: dir })).toMatchObject({ status: 2 })
  })
})

describe('messages a first-time user can act on', () => {
  const key = () => join(dir, 'keys/entitle-private.jwk.json')

  it('a missing --sub, --iss or --aud is exit 2, naming the flag', async () => {
    for (const [flag, args] of [
      ['--sub', ['--iss', 'https://lic.example', '--aud', 'my-app']],
      ['--iss', ['--aud', 'my-app', '--sub', 'globex']],
      ['--aud', ['--iss', 'https://lic.example', '--sub', 'globex']],
    ] as const) {
      const result = await entitle(['issue', '--key', key(), ...args])
      expect(result.status).toBe(2)
      expect(result.stderr).toContain(`${flag} is required`)
    }
  })

  it('a public key passed where the private one belongs says so', async () => {
    for (const file of ['keys/jwks.json']) {
      const result = await entitle(['issue', '--key', join(dir, file), ...issueArgs])
      expect(result.status).toBe(3)
      expect(result.stderr).toContain('signing needs the private key')
    }
    const pem = join(dir, 'public.pem')
    writeFileSync(pem, '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n')
    const result = await entitle(['issue', '--key', pem, ...issueArgs])
    expect(result.status).toBe(3)
    expect(result.stderr).toContain(`${pem} is a public key`)
  })

  it('says what is wrong with a claim, not only where', async () => {
    const claims = join(dir, 'bad-claims.json')
    writeFileSync(
      claims,
      JSON.stringify({ plan: { id: 'team' }, features: { 'api-calls': { cap: { limit: 5 } } } }),
    )
    const result = await entitle(['issue', '--key', key(), ...issueArgs, '--claims', claims])
    expect(result.status).toBe(1)
    expect(result.stderr).toContain('ent.features.api-calls.cap.period: expected "hour" or "day"')
  })

  it('inspect of a file that does not exist says so, instead of reading its name as a token', async () => {
    const result = await entitle(['inspect', 'licence.jwt'], { cwd: dir })
    expect(result.status).toBe(3)
    expect(result.stderr).toContain(
      'licence.jwt is neither a token (three base64url segments) nor a file that exists',
    )
  })

  it('inspect of a token with a Bearer prefix names the prefix', async () => {
    const token = (
      await entitle(['issue', '--key', key(), ...issueArgs, '--feature', 'export'])
    ).stdout.trim()
    const result = await entitle(['inspect', `Bearer ${token}`, '--key', join(dir, 'keys/jwks.json')])
    expect(result.status).toBe(1)
    expect(result.stdout).toContain('the token starts with "Bearer "')
  })

  it('inspect of a token just expired (within the clock tolerance) does not say OK beside DENIED expired', async () => {
    const token = (
      await entitle(['issue', '--key', key(), ...issueArgs, '--feature', 'export', '--expires', '1h'])
    ).stdout.trim()
    const at = new Date(Date.now() + 3600_000 + 30_000).toISOString()
    const result = await entitle([
      'inspect',
      token,
      '--key',
      join(dir, 'keys/jwks.json'),
      ...issueArgs.slice(0, 4),
      '--at',
      at,
    ])
    expect(result.stdout).not.toContain('Verification: OK')
    expect(result.stdout).toContain('Verification: signature and claims OK, but the token has EXPIRED')
    expect(result.stdout).toMatch(/export +DENIED +expired/)
    expect(result.status).toBe(1)
  })

  it('inspect hints at --region when a feature is blocked for want of one', async () => {
    const token = (
      await entitle(['issue', '--key', key(), ...issueArgs, '--feature', 'export', '--regions', 'DE,FR'])
    ).stdout.trim()
    const result = await entitle([
      'inspect',
      token,
      '--key',
      join(dir, 'keys/jwks.json'),
      ...issueArgs.slice(0, 4),
    ])
    expect(result.stdout).toMatch(/export +DENIED +region_blocked/)
    expect(result.stdout).toContain('pass --region CODE')
    expect(result.status).toBe(0)
    expect(
      (await entitle(['inspect', token, '--key', join(dir, 'keys/jwks.json'), '--region', 'DE'])).stdout,
    ).toMatch(/export +ALLOWED/)
  })

  it('--help points to documentation that ships in the package', async () => {
    const help = (await entitle(['--help'])).stdout
    expect(help).toContain('node_modules/entitle/docs/cli.md')
    const packed = JSON.parse(readFileSync('package.json', 'utf8')) as { files: string[] }
    // Every page of docs/ ships (test/package/pack.test.ts follows their links).
    expect(packed.files).toContain('docs/*.md')
  })
})
