import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, describe, expect, it } from 'vitest'
import { cadCatalog } from './cad-catalog.js'
import { ADMIN, SECRET, SERVICE } from './helpers.js'

// Two license server processes on one SQLite file, as two replicas behind a load balancer would run: each acquire
// counts the seats inside BEGIN IMMEDIATE, so the count cannot change between the read and the insert even from
// the other process.

const children: ChildProcess[] = []
afterAll(() => {
  for (const child of children) child.kill('SIGKILL')
})

function serve(data: string, catalog: string): Promise<string> {
  const child = spawn(
    process.execPath,
    [
      'examples/.build/license-server.js',
      '--port',
      '0',
      '--data',
      data,
      '--catalog',
      catalog,
      '--issuer',
      'https://license.replicas.test',
    ],
    {
      env: {
        ...process.env,
        ENTITLE_ADMIN_KEY: ADMIN,
        ENTITLE_ORDER_SECRET: SECRET,
        ENTITLE_SERVICE_KEY: SERVICE,
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  children.push(child)
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the server exited (${code})`)))
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const url = /license server on (\S+)/.exec(line)?.[1]
      if (url) resolve(url)
    })
  })
}

describe('leases on two server processes sharing one database', () => {
  it('50 concurrent acquires of a pool of 10, spread over both, hold exactly 10', async () => {
    execFileSync(process.execPath, ['scripts/build-examples.mjs'])
    const data = mkdtempSync(join(tmpdir(), 'entitle-replicas-'))
    const catalog = cadCatalog(10)
    // The first makes the database (migrations, keys); the second opens it.
    const first = await serve(data, catalog)
    const second = await serve(data, catalog)
    const raw = JSON.stringify({
      orderId: 'o-replicas',
      type: 'purchase',
      customer: { id: 'acme' },
      sku: 'cad',
    })
    const t = Math.floor(Date.now() / 1000)
    const v1 = createHmac('sha256', SECRET).update(`${t}.${raw}`).digest('hex')
    const ordered = await fetch(`${first}/v1/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'entitle-signature': `t=${t},v1=${v1}` },
      body: raw,
    })
    expect(ordered.status).toBe(201)
    const statuses = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const response = await fetch(`${i % 2 === 0 ? first : second}/v1/leases`, {
          method: 'POST',
          headers: { authorization: `Bearer ${SERVICE}`, 'content-type': 'application/json' },
          body: JSON.stringify({ subject: 'acme', pool: 'seats', holder: `host-${i}` }),
        })
        await response.arrayBuffer()
        return response.status
      }),
    )
    expect(statuses.filter((status) => status === 201)).toHaveLength(10)
    expect(statuses.filter((status) => status === 409)).toHaveLength(40)
    // Both replicas see the same ten.
    for (const url of [first, second]) {
      const listed = await fetch(`${url}/admin/customers/acme/leases`, {
        headers: { authorization: `Bearer ${ADMIN}` },
      })
      expect(((await listed.json()) as { leases: unknown[] }).leases).toHaveLength(10)
    }
  }, 60_000)
})
