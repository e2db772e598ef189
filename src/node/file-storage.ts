import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import type { EntitlementStorage } from '../platform/storage.js'

/** Whether process `pid` of this machine runs: `kill(pid, 0)` checks without signalling. */
function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/**
 * A storage in a folder: one file per key, written atomically (a temporary file renamed over the old one), so a
 * crash mid-write leaves the previous value, never half of one, and a failed write leaves no temporary file. The
 * folder is made on the first write, and again if it is removed while the app runs. Several processes may share
 * the folder (a cluster's workers, an app restarted): each keeps its own usage journal, and a process that finds
 * the journal of one that no longer runs on this machine takes it over and sends it once.
 *
 * @example
 * ```ts
 * import { createFileStorage } from 'entitle/node'
 * const client = createEntitlements({ ...options, storage: createFileStorage('/var/lib/my-app/entitlements') })
 * ```
 */
export function createFileStorage(directory: string): EntitlementStorage {
  if (typeof directory !== 'string' || directory.length === 0) throw new TypeError('directory must be a path')
  let made: Promise<unknown> | undefined
  let sequence = 0
  // Keys become file names: encoded so that no key can name a path outside the folder.
  const file = (key: string) => join(directory, `${encodeURIComponent(key).replace(/\./g, '%2E')}.json`)
  const keyOf = (name: string) => decodeURIComponent(name.slice(0, -'.json'.length))
  const host = hostname()
  /** Makes the folder once; a failure is not kept, so the next write tries again (permissions fixed meanwhile). */
  const writeFolder = () => {
    made ??= mkdir(directory, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
      made = undefined
      throw error
    })
    return made
  }
  return {
    async get(key) {
      try {
        return await readFile(file(key), 'utf8')
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
        throw error
      }
    },
    async set(key, value) {
      const temporary = `${file(key)}.${process.pid}.${++sequence}.tmp`
      const writeTemporary = () => writeFile(temporary, value, { mode: 0o600 })
      try {
        await writeFolder()
        await writeTemporary().catch(async (error: NodeJS.ErrnoException) => {
          // The folder went away under a running app (a cleaner, a user): make it again, once.
          if (error.code !== 'ENOENT') throw error
          made = undefined
          await writeFolder()
          await writeTemporary()
        })
        await rename(temporary, file(key))
      } catch (error) {
        await rm(temporary, { force: true }).catch(() => {})
        throw error
      }
    },
    async delete(key) {
      await rm(file(key), { force: true })
    },
    async keys(prefix) {
      const names = await readdir(directory).catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return [] as string[]
        throw error
      })
      return names
        .filter((name) => name.endsWith('.json'))
        .map(keyOf)
        .filter((key) => key.startsWith(prefix))
    },
    setSync(key, value) {
      const temporary = `${file(key)}.${process.pid}.${++sequence}.tmp`
      try {
        mkdirSync(directory, { recursive: true, mode: 0o700 })
        writeFileSync(temporary, value, { mode: 0o600 })
        renameSync(temporary, file(key))
      } catch (error) {
        rmSync(temporary, { force: true })
        throw error
      }
    },
    owners: {
      claim: () => ({ pid: process.pid, host }),
      // Another machine's process (a folder shared over the network) cannot be told: taken as running.
      alive: (owner) => owner.host !== host || typeof owner.pid !== 'number' || processRuns(owner.pid),
    },
  }
}

/**
 * A token source that reads a license file each time the client asks (so replacing the file takes effect at the
 * next refresh).
 *
 * @example
 * ```ts
 * import { tokenFromFile } from 'entitle/node'
 * const client = createEntitlements({ ...options, token: tokenFromFile('/etc/my-app/license.jwt') })
 * ```
 */
export function tokenFromFile(path: string): () => Promise<string> {
  return async () => (await readFile(path, 'utf8')).trim()
}
