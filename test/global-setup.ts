import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'

// The integration and package tests read dist/: build it once, fresh, before the first of them runs. Both projects
// name this setup; the second finds it done (the unit project needs no build).
export default function setup(): void {
  if (process.env.ENTITLE_TEST_DIST_BUILT === '1') return
  process.env.ENTITLE_TEST_DIST_BUILT = '1'
  rmSync('dist', { recursive: true, force: true })
  execFileSync(process.execPath, ['node_modules/tsup/dist/cli-default.js', '--silent'], { stdio: 'inherit' })
}
