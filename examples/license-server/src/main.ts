// The reference license server as a process:
//   node examples/.build/license-server.js [serve] [--port 8787] [--db license.db] [--catalog catalog.json]
//   node examples/.build/license-server.js rotate-keys [--db license.db]
// Secrets come from the environment: ENTITLE_ADMIN_KEY, ENTITLE_ORDER_SECRET, ENTITLE_SERVICE_KEY (optional).
import { parseArgs } from 'node:util'
import { openDatabase } from './db.js'
import { createKeyring } from './keys.js'
import { startLicenseServer } from './start.js'

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      port: { type: 'string', default: '8787' },
      host: { type: 'string', default: '127.0.0.1' },
      db: { type: 'string', default: 'license.db' },
      catalog: { type: 'string' },
      issuer: { type: 'string' },
    },
  })
  const command = positionals[0] ?? 'serve'
  if (command === 'rotate-keys') {
    const db = openDatabase(values.db)
    const keyring = createKeyring(db, Date.now)
    await keyring.ensure()
    console.log(`new signing key: ${await keyring.rotate()}`)
    db.close()
    return
  }
  if (command !== 'serve') throw new Error(`unknown command ${command}: serve or rotate-keys`)
  const running = await startLicenseServer({
    port: Number(values.port),
    host: values.host,
    db: values.db,
    ...(values.catalog ? { catalog: values.catalog } : {}),
    ...(values.issuer ? { issuer: values.issuer } : {}),
  })
  console.log(`license server on ${running.url} (database ${values.db})`)
  if (!process.env.ENTITLE_ADMIN_KEY)
    console.log(`admin key (set ENTITLE_ADMIN_KEY to choose): ${running.adminKey}`)
  if (!process.env.ENTITLE_ORDER_SECRET)
    console.log(`order secret (set ENTITLE_ORDER_SECRET to choose): ${running.orderSecret}`)
  const stop = () => void running.close().then(() => process.exit(0))
  process.once('SIGTERM', stop)
  process.once('SIGINT', stop)
}

main(process.argv.slice(2)).catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
