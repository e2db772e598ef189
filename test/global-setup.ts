import { execFileSync } from 'node:child_process'
import { rmSync } from 'node:fs'

// The package tests (exports, browser bundle) read dist/: build it once, fresh, before any test runs.
export default function setup(): void {
  rmSync('dist', { recursive: true, force: true })
  execFileSync(process.execPath, ['node_modules/tsup/dist/cli-default.js', '--silent'], { stdio: 'inherit' })
}
