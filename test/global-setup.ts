import { execFileSync } from 'node:child_process'

// The package tests (exports, browser bundle) read dist/: build it once, fresh, before any test runs.
export default function setup(): void {
  execFileSync(process.execPath, ['node_modules/tsup/dist/cli-default.js', '--silent'], { stdio: 'inherit' })
}
