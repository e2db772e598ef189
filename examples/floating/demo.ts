// `npm run demo:floating`: two workstations and one floating seat. The reference license server starts (SQLite in
// a temporary folder), acme buys one floating desktop seat (15 s leases, renewed every 5 s), and two holder
// processes start, as two terminals would. The first holds the seat; the second waits. The first is killed with
// SIGKILL (no chance to give the seat back): its lease runs out, and the second gets the seat. Exits 0.
import { type ChildProcess, spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { startLicenseServer } from '../license-server/src/start.js'

interface Line {
  holder: string
  event: string
  at: number
  expiresAt?: number
  [key: string]: unknown
}

const HOLDER = fileURLToPath(new URL('./floating-holder.js', import.meta.url))
const say = (text = '') => console.log(text)
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`

export async function runFloatingDemo(): Promise<{ killedAt: number; leaseEnd: number; takenAt: number }> {
  const folder = mkdtempSync(join(tmpdir(), 'entitle-floating-'))
  const license = await startLicenseServer({ db: join(folder, 'license.db'), port: 0, leaseSweepMs: 1000 })
  const children: ChildProcess[] = []
  const lines: Line[] = []
  const waiters: Array<() => void> = []
  try {
    const raw = JSON.stringify({
      orderId: 'crm-2001',
      type: 'purchase',
      customer: { id: 'acme' },
      sku: 'starter',
      seats: 1,
      addons: ['floating-desktop'],
    })
    const t = Math.floor(Date.now() / 1000)
    const v1 = createHmac('sha256', license.orderSecret).update(`${t}.${raw}`).digest('hex')
    const ordered = await fetch(`${license.url}/v1/orders`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'entitle-signature': `t=${t},v1=${v1}` },
      body: raw,
    })
    if (!ordered.ok) throw new Error(`order refused: ${ordered.status} ${await ordered.text()}`)
    say('entitle floating demo: one floating seat, two workstations')
    say(
      `(license server ${license.url}; acme bought 1 floating desktop seat: 15 s leases, renewed every 5 s)`,
    )

    const start = (holder: string) => {
      const child = spawn(process.execPath, [HOLDER, license.url, license.serviceKey, holder], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      children.push(child)
      createInterface({ input: child.stdout! }).on('line', (text) => {
        const line = JSON.parse(text) as Line
        lines.push(line)
        if (line.event !== 'renewed') say(`   [${holder}] ${describe(line)}`)
        for (const wake of waiters.splice(0)) wake()
      })
      return child
    }
    const until = async (test: (line: Line) => boolean, ms: number, what: string) => {
      const deadline = Date.now() + ms
      for (;;) {
        const found = lines.find(test)
        if (found) return found
        if (Date.now() > deadline) throw new Error(`no ${what} within ${ms} ms`)
        await new Promise<void>((resolve) => {
          waiters.push(resolve)
          setTimeout(resolve, 250).unref()
        })
      }
    }

    say('\n1. workstation-1 starts and takes the seat')
    const first = start('workstation-1')
    await until((l) => l.holder === 'workstation-1' && l.event === 'check', 15_000, 'seat for workstation-1')
    say('\n2. workstation-2 starts: the pool is full, it waits for a seat')
    start('workstation-2')
    await until(
      (l) => l.holder === 'workstation-2' && l.event === 'waiting',
      15_000,
      'refusal for workstation-2',
    )
    // Let a renewal or two happen, so the lease that is cut short is one that was kept alive.
    await until((l) => l.holder === 'workstation-1' && l.event === 'renewed', 15_000, 'renewal')
    const admin = await fetch(`${license.url}/admin/customers/acme/leases`, {
      headers: { authorization: `Bearer ${license.adminKey}` },
    })
    const { leases } = (await admin.json()) as { leases: Array<{ holder: string; lastHeartbeat: string }> }
    for (const lease of leases)
      say(`   admin: ${lease.holder} holds the seat, last heartbeat ${lease.lastHeartbeat}`)

    say('\n3. workstation-1 is killed with SIGKILL: it cannot give the seat back')
    const leaseEnd = Math.max(
      ...lines.filter((l) => l.holder === 'workstation-1' && l.expiresAt).map((l) => l.expiresAt!),
    )
    const killedAt = Date.now()
    first.kill('SIGKILL')
    say(`   its lease ends ${seconds(leaseEnd - killedAt)} from now, and its seat with it`)
    const taken = await until(
      (l) => l.holder === 'workstation-2' && l.event === 'held',
      30_000,
      'seat for workstation-2',
    )
    say(
      `\n4. workstation-2 got the seat ${seconds(taken.at - killedAt)} after the kill, once the lease ran out`,
    )
    await until((l) => l.holder === 'workstation-2' && l.event === 'check', 10_000, 'check by workstation-2')
    return { killedAt, leaseEnd, takenAt: taken.at }
  } finally {
    for (const child of children) child.kill('SIGKILL')
    await license.close()
    rmSync(folder, { recursive: true, force: true })
  }
}

function describe(line: Line): string {
  switch (line.event) {
    case 'held':
      return `holds the seat (lease ${String(line.lease).slice(0, 11)}…)`
    case 'waiting':
      return `denied: ${line.reason}, ${line.inUse} of ${line.limit} in use; asks again in ${seconds(Math.max(0, Number(line.retryAt) - line.at))}`
    case 'check':
      return `check('desktop'): ${line.allowed ? 'allowed' : 'denied'} (${line.reason})`
    default:
      return `${line.event} ${JSON.stringify(line)}`
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runFloatingDemo()
  say('\ndone')
}
