import { runCli } from './main.js'

const outcome = await runCli(process.argv.slice(2))
process.stdout.write(outcome.stdout)
process.stderr.write(outcome.stderr)
process.exitCode = outcome.exitCode
