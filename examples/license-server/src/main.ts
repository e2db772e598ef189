// The reference license server as a process (`npm run server`):
//   node examples/.build/license-server.js [serve] [--port 8787] [--data .license-server] [--catalog catalog.json]
//   node examples/.build/license-server.js rotate-keys [--data .license-server] [--immediate]
// Secrets come from the environment (ENTITLE_ADMIN_KEY, ENTITLE_ORDER_SECRET, ENTITLE_SERVICE_KEY) or from
// secrets.env in the data folder, made on the first start (mode 0600) and reused after.
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { openDatabase } from './db.js'
import { createKeyring } from './keys.js'
import { DEFAULT_DATA_DIR, startLicenseServer } from './start.js'

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string', default: '8787' },
      host: { type: 'string', default: '127.0.0.1' },
      data: { type: 'string', default: process.env.ENTITLE_DATA_DIR ?? DEFAULT_DATA_DIR },
      db: { type: 'string' },
      catalog: { type: 'string' },
      issuer: { type: 'string' },
      immediate: { type: 'boolean', default: false },
    },
  })
  const command = positionals[0] ?? 'serve'
  const dbPath = values.db ?? join(values.data, 'license.db')
  if (command === 'rotate-keys') {
    const db = openDatabase(dbPath)
    const keyring = createKeyring(db, Date.now)
    await keyring.ensure()
    const { kid, signsFrom } = await keyring.rotate({ immediate: values.immediate })
    console.log(`new signing key ${kid}: published now, signs from ${new Date(signsFrom).toISOString()}`)
    db.close()
    return
  }
  if (command !== 'serve') throw new Error(`unknown command ${command}: serve or rotate-keys`)
  const running = await startLicenseServer({
    port: Number(values.port),
    host: values.host,
    dataDir: values.data,
    db: dbPath,
    ...(values.catalog ? { catalog: values.catalog } : {}),
    ...(values.issuer ? { issuer: values.issuer } : {}),
  })
  console.log(`license server on ${running.url}`)
  console.log(`  database  ${running.database}`)
  const secrets = running.secretsFile
  if (secrets) {
    const fromFile = ['ENTITLE_ADMIN_KEY', 'ENTITLE_ORDER_SECRET', 'ENTITLE_SERVICE_KEY'].filter(
      (name) => !secrets.fromEnvironment.includes(name as never),
    )
    if (fromFile.length > 0)
      console.log(
        `  secrets   ${secrets.file} (${secrets.created ? 'made now' : 'reused'}: ${fromFile.join(', ')})`,
      )
    if (secrets.fromEnvironment.length > 0)
      console.log(`  from the environment: ${secrets.fromEnvironment.join(', ')}`)
  }
  console.log(`  place an order: npm run order -- --customer acme --sku team`)
  const stop = () => void running.close().then(() => process.exit(0))
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

main(process.argv.slice(2)).catch((error: unknown) => {
  const { code, port, address } = error as { code?: unknown; port?: unknown; address?: unknown }
  if (code === 'EADDRINUSE')
    console.error(
      `port ${port} on ${address} is taken (another license server?): stop it, or pick another with --port (npm run server -- --port 8788)`,
    )
  else console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
