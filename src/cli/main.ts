import { parseArgs } from 'node:util'
import { formatInspection, hasProblems, INSPECT_HELP, inspectToken } from './inspect.js'
import { CliError, EXIT } from './io.js'
import { ISSUE_HELP, issue } from './issue.js'
import { KEYGEN_HELP, keygen } from './keygen.js'

const HELP = `entitle: make keys, issue entitlement tokens and look inside them

Usage: entitle <command> [options]

Commands:
  keygen    make an Ed25519 (or ES256) key pair and its JWK Set
  issue     sign an entitlement token from a claims file or flags
  inspect   decode and verify a token, and show the decision for each feature

Run entitle <command> --help for a command's options. Documentation: docs/cli.md in this package
(node_modules/entitle/docs/cli.md), and its README.md.`

const string = { type: 'string' } as const
const strings = { type: 'string', multiple: true } as const
const flag = { type: 'boolean' } as const

const COMMANDS = {
  keygen: {
    help: KEYGEN_HELP,
    options: { alg: string, kid: string, out: string, force: flag },
    run: (values: Record<string, unknown>) => keygen(values),
  },
  issue: {
    help: ISSUE_HELP,
    options: {
      key: string,
      claims: string,
      iss: string,
      aud: string,
      sub: string,
      plan: string,
      feature: strings,
      addon: strings,
      limit: strings,
      cap: strings,
      'term-end': string,
      grace: string,
      'trial-end': string,
      devices: string,
      'max-devices': string,
      regions: string,
      'deny-regions': string,
      expires: string,
      kid: string,
      alg: string,
      out: string,
    },
    run: (values: Record<string, unknown>) => issue(values, Math.floor(Date.now() / 1000)),
  },
  inspect: {
    help: INSPECT_HELP,
    options: {
      key: string,
      iss: string,
      aud: string,
      alg: string,
      at: string,
      roles: string,
      region: string,
      device: string,
      json: flag,
    },
    run: async (values: Record<string, unknown>, positionals: string[]) => {
      if (positionals.length !== 1) throw new CliError('inspect takes one token, file or -', EXIT.usage)
      const result = await inspectToken(positionals[0]!, values)
      const text = values.json ? `${JSON.stringify(result, null, 2)}\n` : formatInspection(result)
      return { text, exitCode: hasProblems(result) ? EXIT.problems : EXIT.ok }
    },
  },
} as const

interface Outcome {
  stdout: string
  stderr: string
  exitCode: number
}

/** Runs one command line; returns what to print and the exit status. Never throws. */
export async function runCli(argv: string[]): Promise<Outcome> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    return { stdout: `${HELP}\n`, stderr: '', exitCode: name === undefined ? EXIT.usage : EXIT.ok }
  }
  const command = COMMANDS[name as keyof typeof COMMANDS]
  if (!command)
    return { stdout: '', stderr: `entitle: unknown command "${name}"\n\n${HELP}\n`, exitCode: EXIT.usage }
  if (rest.includes('--help') || rest.includes('-h'))
    return { stdout: `${command.help}\n`, stderr: '', exitCode: EXIT.ok }
  try {
    let parsed: { values: Record<string, unknown>; positionals: string[] }
    try {
      parsed = parseArgs({
        args: rest,
        options: command.options,
        allowPositionals: name === 'inspect',
        strict: true,
      })
    } catch (error) {
      throw new CliError((error as Error).message, EXIT.usage)
    }
    const result = await command.run(parsed.values, parsed.positionals)
    return typeof result === 'string'
      ? { stdout: result, stderr: '', exitCode: EXIT.ok }
      : { stdout: result.text, stderr: '', exitCode: result.exitCode }
  } catch (error) {
    if (error instanceof CliError) {
      const code = error.code ? ` [${error.code}]` : ''
      const hint = error.exitCode === EXIT.usage ? `\nRun entitle ${name} --help for usage.` : ''
      return {
        stdout: '',
        stderr: `entitle ${name}: ${error.message}${code}${hint}\n`,
        exitCode: error.exitCode,
      }
    }
    // A bug of this command, not the user's: exit 70 (EX_SOFTWARE), the message, and the stack only on request.
    const detail = process.env.ENTITLE_DEBUG ? (error as Error).stack : (error as Error).message
    return {
      stdout: '',
      stderr: `entitle ${name}: unexpected error (a bug; ENTITLE_DEBUG=1 shows where): ${detail}\n`,
      exitCode: EXIT.bug,
    }
  }
}
