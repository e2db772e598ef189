// Generates the API reference (docs/api, Markdown) from the TSDoc with TypeDoc. `--check` generates into a
// scratch folder and exits 1 if the committed docs/api differs, so the reference cannot drift from the code.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync } from 'node:fs'
import { join, relative } from 'node:path'

const check = process.argv.includes('--check')
const out = check ? '.tmp/api-check' : 'docs/api'
rmSync(out, { recursive: true, force: true })
execFileSync(process.execPath, ['node_modules/typedoc/bin/typedoc', '--out', out, '--logLevel', 'Warn'], {
  stdio: 'inherit',
})

if (check) {
  const files = (dir) =>
    readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
      .sort()
  const fresh = files(out)
  const committed = files('docs/api')
  const differing = [...new Set([...fresh, ...committed])].filter((file) => {
    try {
      return readFileSync(join(out, file), 'utf8') !== readFileSync(join('docs/api', file), 'utf8')
    } catch {
      return true
    }
  })
  rmSync(out, { recursive: true, force: true })
  if (differing.length > 0) {
    console.error(`docs/api is out of date (${differing.join(', ')}): run \`npm run docs:api\` and commit it`)
    process.exit(1)
  }
  console.log(`docs/api is up to date (${fresh.length} files)`)
}
