import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A free loopback port, asked of the OS. */
export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * A real `redis-server` (Debian's package, installed by .ci/run) on loopback, with its data in a temporary folder.
 * `durable` turns on the append-only file with an fsync per write, so a restart keeps every count.
 */
export async function startRedis(options: { durable?: boolean } = {}) {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'entitle-redis-'))
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    options.durable ? 'yes' : 'no',
    '--appendfsync',
    'always',
  ]
  let child: ChildProcess | undefined
  async function start(): Promise<void> {
    const started = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = started
    await new Promise<void>((resolve, reject) => {
      let output = ''
      const onData = (chunk: Buffer) => {
        output += chunk
        if (output.includes('Ready to accept connections')) {
          started.stdout?.off('data', onData)
          resolve()
        }
      }
      started.stdout?.on('data', onData)
      started.once('error', (error) =>
        reject(
          new Error(`redis-server could not start (is Debian's redis-server installed?): ${error.message}`),
        ),
      )
      started.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)))
    })
    started.stdout?.resume()
  }
  async function stop(): Promise<void> {
    const running = child
    child = undefined
    if (running === undefined || running.exitCode !== null) return
    await new Promise<void>((resolve) => {
      running.once('exit', () => resolve())
      running.kill('SIGKILL')
    })
  }
  await start()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    stop,
    /** Kills the server (no clean shutdown) and starts it again on the same port and data. */
    async restart(downMs = 200): Promise<void> {
      await stop()
      await new Promise((resolve) => setTimeout(resolve, downMs))
      await start()
    },
  }
}
