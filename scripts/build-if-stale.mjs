// Builds dist/ only when what it is built from changed: `npm run demo:offline`, `npm pack` and the benches used to
// rebuild it every time (about 10 s each). What it is built from is hashed (src/, the build and TypeScript
// configuration, package.json), and the hash kept in dist/.source-hash by every build; `--stamp` only writes it
// (the end of `npm run build`).
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const STAMP = join(root, 'dist', '.source-hash')

function sourceHash() {
  const hash = createHash('sha256')
  const files = [
    ...readdirSync(join(root, 'src'), { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath ?? entry.path, entry.name)),
    ...['tsup.config.ts', 'tsconfig.json', 'tsconfig.node.json', 'package.json'].map((file) =>
      join(root, file),
    ),
  ].sort()
  for (const file of files)
    hash.update(file.slice(root.length)).update('\0').update(readFileSync(file)).update('\0')
  return hash.digest('hex')
}

const hash = sourceHash()
if (process.argv.includes('--stamp')) {
  writeFileSync(STAMP, hash)
} else if (existsSync(STAMP) && readFileSync(STAMP, 'utf8') === hash) {
  console.error('dist/ is up to date with src/: not rebuilt')
} else {
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' })
}
