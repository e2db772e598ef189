// Starts the reference license server in this process: used by main.ts (the command), the demo and the tests.
import { existsSync, mkdirSync } from 'node:fs'
import { createServer } from 'node:http'
import type { Socket } from 'node:net'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { getRequestListener } from '@hono/node-server'
import { createLicenseServer, type LicenseServerOptions } from './app.js'
import { loadCatalog } from './catalog.js'
import { openDatabase } from './db.js'
import { DomainError } from './errors.js'
import { problemOf, problemResponse } from './problem.js'
import { type LoadedSecrets, loadSecrets } from './secrets.js'

/** The example catalog, found from the source (src/start.ts) and from the build (examples/.build/). */
const DEFAULT_CATALOG = ['../catalog.json', '../license-server/catalog.json']
  .map((path) => fileURLToPath(new URL(path, import.meta.url)))
  .find((path) => existsSync(path))

/** Where the server keeps its database and secrets unless told otherwise: a folder of its own, never the repo's. */
export const DEFAULT_DATA_DIR = '.license-server'

export interface StartOptions {
  port?: number
  host?: string
  /** The database and the secrets file live here. Default `.license-server` in the working directory. */
  dataDir?: string
  /** The SQLite file (`:memory:` for tests). Default `license.db` in `dataDir`. */
  db?: string
  catalog?: string
  issuer?: string
  audience?: string
  /** Secrets given here win over the environment and the secrets file (tests); each at least 32 bytes. */
  adminKey?: string
  orderSecret?: string
  serviceKey?: string
  tokenTtlSec?: number
  /** The server's clock (tests move it). */
  now?: () => number
  heartbeatMs?: number
  maxStreamsPerService?: number
  maxStreamsPerCustomer?: number
  keys?: LicenseServerOptions['keys']
  /** How often leases whose time ran out are ended and told of (their seats are free anyway). Default 5 000 ms. */
  leaseSweepMs?: number
}

/**
 * Node answers some malformed requests itself, before any handler runs (headers over 16 KB: 431; a request it
 * cannot parse: 400). Those answers are problem+json too.
 */
function answerClientErrors(error: NodeJS.ErrnoException, socket: Socket): void {
  if (!socket.writable) return
  const problem =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? new DomainError('headers_too_large', 'Headers too large', 'at most 16 KiB of headers')
      : new DomainError('malformed', 'Bad request', 'the request could not be parsed')
  const { status, body } = problemOf(problem)
  const text = JSON.stringify(body)
  socket.end(
    `HTTP/1.1 ${status} ${status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\n` +
      `content-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
  )
}

/** Starts the server; resolves once it listens, with its URL, its secrets and a `close()` that ends everything. */
export async function startLicenseServer(options: StartOptions = {}) {
  // Secrets live beside an explicit database file, unless told where.
  const dataDir =
    options.dataDir ??
    (options.db !== undefined && options.db !== ':memory:' ? dirname(options.db) : DEFAULT_DATA_DIR)
  const dbPath = options.db ?? join(dataDir, 'license.db')
  const given = [options.adminKey, options.orderSecret, options.serviceKey]
  // The folders are made as the default one is: `--data DIR` for a folder that does not exist yet just works.
  if (dbPath !== ':memory:') mkdirSync(dirname(dbPath), { recursive: true, mode: 0o700 })
  if (given.some((s) => s === undefined)) mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  // Secrets given in full need no file; otherwise the environment, then the data folder's secrets file.
  const loaded: LoadedSecrets | undefined = given.every((s) => s !== undefined)
    ? undefined
    : loadSecrets(dataDir)
  const secrets = {
    adminKey: options.adminKey ?? loaded!.adminKey,
    orderSecret: options.orderSecret ?? loaded!.orderSecret,
    serviceKey: options.serviceKey ?? loaded!.serviceKey,
  }
  const catalogPath = options.catalog ?? DEFAULT_CATALOG
  if (catalogPath === undefined) throw new Error('no catalog: pass --catalog <file>')
  const catalog = loadCatalog(catalogPath)
  const db = openDatabase(dbPath)
  const host = options.host ?? '127.0.0.1'
  // The issuer must be known before the port is: bind first, then build the app around the actual address.
  let handler: ((request: Request) => Response | Promise<Response>) | undefined
  // A request Node parsed but the adapter cannot make a Request of (no Host, a bad URL) is a problem+json too.
  const listener = getRequestListener((request) => handler!(request), {
    hostname: host,
    errorHandler: () =>
      problemResponse(new DomainError('malformed', 'Bad request', 'the request has no usable Host or URL')),
  })
  // No cap on the number of headers: Node drops those past 1 000, Host among them, while the 16 KiB size limit
  // (431) is the bound that matters. An HTTP/1.1 request with no Host is refused here, as a problem: Node's own
  // refusal is a bare 400.
  const server = createServer({ maxHeaderSize: 16_384, requireHostHeader: false }, (req, res) => {
    if (req.httpVersion !== '1.1' || req.headers.host !== undefined) return listener(req, res)
    const { status, body } = problemOf(
      new DomainError('malformed', 'Bad request', 'an HTTP/1.1 request needs a Host'),
    )
    const text = JSON.stringify(body)
    res.writeHead(status, {
      'content-type': 'application/problem+json',
      'content-length': Buffer.byteLength(text),
      connection: 'close',
    })
    res.end(text)
  })
  server.maxHeadersCount = 0
  server.listen(options.port ?? 8787, host)
  server.on('clientError', answerClientErrors)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve)
      server.once('error', reject)
    })
  } catch (error) {
    db.close()
    throw error
  }
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : options.port
  const url = `http://${host}:${port}`
  let licenseServer: Awaited<ReturnType<typeof createLicenseServer>>
  try {
    licenseServer = await createLicenseServer({
      db,
      catalog,
      issuer: options.issuer ?? url,
      audience: options.audience ?? catalog.product,
      ...secrets,
      ...(options.tokenTtlSec ? { tokenTtlSec: options.tokenTtlSec } : {}),
      ...(options.now ? { now: options.now } : {}),
      ...(options.heartbeatMs ? { heartbeatMs: options.heartbeatMs } : {}),
      ...(options.maxStreamsPerService ? { maxStreamsPerService: options.maxStreamsPerService } : {}),
      ...(options.maxStreamsPerCustomer ? { maxStreamsPerCustomer: options.maxStreamsPerCustomer } : {}),
      ...(options.keys ? { keys: options.keys } : {}),
    })
  } catch (error) {
    server.close()
    db.close()
    throw error
  }
  handler = licenseServer.app.fetch
  const sweeper = setInterval(() => {
    try {
      licenseServer.services.leases.sweep()
      licenseServer.services.credits.sweepExpiries()
    } catch (error) {
      console.error('sweep (leases, credit expiries) failed:', error)
    }
  }, options.leaseSweepMs ?? 5000)
  sweeper.unref()
  return {
    url,
    ...secrets,
    /** Where the secrets came from, when they were not all given. */
    secretsFile: loaded,
    database: dbPath,
    server: licenseServer,
    async close() {
      clearInterval(sweeper)
      licenseServer.closeStreams()
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        ;(server as { closeAllConnections?: () => void }).closeAllConnections?.()
      })
      db.close()
    },
  }
}
