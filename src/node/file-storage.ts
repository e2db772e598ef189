import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { EntitlementStorage } from '../platform/storage.js'

/**
 * A storage in a folder: one file per key, written atomically (a temporary file renamed over the old one), so a
 * crash mid-write leaves the previous value, never half of one, and a failed write leaves no temporary file. The
 * folder is made on the first write, and again if it is removed while the app runs.
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
