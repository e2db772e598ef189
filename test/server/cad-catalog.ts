import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * The example catalog plus a CAD plan sold as floating seats: `seats` at once per customer, counted per machine,
 * leases of `ttl` s renewed every `heartbeat` s, 10 s of grace, revival within 5 minutes, borrowing for up to a
 * week with one seat never lent; and a render farm, a pool of its own per process. Returns the file's path.
 */
export function cadCatalog(seats = 2, ttl = 60, heartbeat = 20): string {
  const catalog = JSON.parse(readFileSync('examples/license-server/catalog.json', 'utf8'))
  catalog.plans.cad = {
    name: 'CAD floating',
    tier: 2,
    features: { draw: true, export: true, render: { pool: 'farm' } },
    pools: {
      seats: {
        seats,
        holder: 'machine',
        ttl,
        heartbeat,
        revival: 300,
        grace: 10,
        borrow: { max: 604_800, reserve: 1 },
      },
      farm: { seats: 10, holder: 'process', ttl: 60, heartbeat: 20 },
    },
    pool: 'seats',
  }
  const file = join(mkdtempSync(join(tmpdir(), 'entitle-cad-catalog-')), 'catalog.json')
  writeFileSync(file, JSON.stringify(catalog))
  return file
}
