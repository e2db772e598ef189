import type { EntitlementsClient } from '../client/index.js'

/** The part of `process` the exit hook listens on and re-raises the signal with. */
export interface ProcessLike {
  readonly pid: number
  once(signal: NodeJS.Signals, listener: () => void): unknown
  removeListener(signal: NodeJS.Signals, listener: () => void): unknown
  kill(pid: number, signal: NodeJS.Signals): unknown
}

/**
 * Gives back the floating seats this client holds when the process is told to stop (`SIGINT`, `SIGTERM` by
 * default), then lets the signal do what it would have done: another holder need not wait for the lease to run
 * out. Installed only by calling it; returns a function that removes it. A `SIGKILL` or a crash cannot be caught:
 * the seat comes free when its lease ends, at most the pool's `ttl` later.
 *
 * @example
 * ```ts
 * import { releaseLeasesOnExit } from 'entitle/node'
 * const seat = await client.lease('desktop', { holder: machineId })
 * releaseLeasesOnExit(client)
 * ```
 */
export function releaseLeasesOnExit(
  client: Pick<EntitlementsClient, 'releaseLeases'>,
  options: { signals?: readonly NodeJS.Signals[]; deadlineMs?: number; process?: ProcessLike } = {},
): () => void {
  const target = options.process ?? process
  const signals = options.signals ?? ['SIGINT', 'SIGTERM']
  const deadlineMs = options.deadlineMs ?? 2000
  const handlers = new Map<NodeJS.Signals, () => void>()
  const remove = () => {
    for (const [signal, handler] of handlers) target.removeListener(signal, handler)
    handlers.clear()
  }
  for (const signal of signals) {
    const handler = () => {
      remove()
      const deadline = new Promise((resolve) => setTimeout(resolve, deadlineMs).unref?.())
      void Promise.race([client.releaseLeases().catch(() => undefined), deadline]).then(() => {
        // With this hook gone, the signal does what it did before: usually, end the process.
        target.kill(target.pid, signal)
      })
    }
    handlers.set(signal, handler)
    target.once(signal, handler)
  }
  return remove
}
