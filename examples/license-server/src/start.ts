// Starts the reference license server in this process: used by main.ts (the command), the demo and the tests.
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { serve } from '@hono/node-server'
import { createLicenseServer } from './app.js'
import { loadCatalog } from './catalog.js'
import { openDatabase } from './db.js'

/** The example catalog, found from the source (src/main.ts) and from the build (examples/.build/). */
const DEFAULT_CATALOG = ['../catalog.json', '../license-server/catalog.json']
  .map((path) => fileURLToPath(new URL(path, import.meta.url)))
  .find((path) => existsSync(path))

export interface StartOptions {
  port?: number
  host?: string
  db?: string
  catalog?: string
  issuer?: string
  audience?: string
  adminKey?: string
  orderSecret?: string
  serviceKey?: string
  tokenTtlSec?: number
  /** The server's clock (tests move it). */
  now?: () => number
  heartbeatMs?: number
}

/** Starts the server; resolves once it listens, with its URL and a `close()` that ends streams, server and DB. */
export async function startLicenseServer(options: StartOptions = {}) {
  const db = openDatabase(options.db ?? 'license.db')
  const catalogPath = options.catalog ?? DEFAULT_CATALOG
  if (catalogPath === undefined) throw new Error('no catalog: pass --catalog <file>')
  const catalog = loadCatalog(catalogPath)
  const host = options.host ?? '127.0.0.1'
  // The issuer must be known before the port is: bind first, then build the app around the actual address.
  let handler: ((request: Request) => Response | Promise<Response>) | undefined
  const server = serve({ fetch: (request) => handler!(request), port: options.port ?? 8787, hostname: host })
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve)
    server.once('error', reject)
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : options.port
  const url = `http://${host}:${port}`
  const secrets = {
    adminKey: options.adminKey ?? process.env.ENTITLE_ADMIN_KEY ?? `adm_${randomBytes(16).toString('hex')}`,
    orderSecret:
      options.orderSecret ?? process.env.ENTITLE_ORDER_SECRET ?? `whs_${randomBytes(16).toString('hex')}`,
    serviceKey: options.serviceKey ?? process.env.ENTITLE_SERVICE_KEY,
  }
  const licenseServer = await createLicenseServer({
    db,
    catalog,
    issuer: options.issuer ?? url,
    audience: options.audience ?? catalog.product,
    ...secrets,
    ...(options.tokenTtlSec ? { tokenTtlSec: options.tokenTtlSec } : {}),
    ...(options.now ? { now: options.now } : {}),
    ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
  })
  handler = licenseServer.app.fetch
  return {
    url,
    ...secrets,
    server: licenseServer,
    async close() {
      licenseServer.closeStreams()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
      })
      db.close()
    },
  }
}
