import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'

const WORKER = join(__dirname, 'worker.mjs')

/** One line the worker printed after a step. */
export type Said = Record<string, unknown> & { step: string }

/**
 * Starts the worker with `config`; resolves when it has printed `until` lines (or ended), then kills it with
 * SIGKILL if asked, and resolves to what it said. A kill -9 at that very moment: no close(), no beforeExit.
 */
export function runWorker(
  config: Record<string, unknown>,
  options: { killAfterLines?: number; killDelayMs?: number } = {},
): Promise<{ said: Said[]; stderr: string; killed: boolean; code: number | null }> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(process.execPath, [WORKER, JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const said: Said[] = []
    let stderr = ''
    let buffer = ''
    let killed = false
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.stderr!.on('data', (chunk) => {
      stderr += chunk
    })
    child.stdout!.on('data', (chunk) => {
      buffer += chunk
      for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n')) {
        said.push(JSON.parse(buffer.slice(0, end)) as Said)
        buffer = buffer.slice(end + 1)
        if (options.killAfterLines !== undefined && said.length === options.killAfterLines && !killed) {
          killed = true
          setTimeout(() => child.kill('SIGKILL'), options.killDelayMs ?? 0)
        }
      }
    })
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ said, stderr, killed, code })
    })
  })
}
