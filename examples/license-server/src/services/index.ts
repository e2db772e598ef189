import type { Catalog } from '../catalog.js'
import type { Db } from '../db.js'
import type { Keyring } from '../keys.js'
import { createRepository } from '../repository.js'
import { createAccessService } from './access.js'
import { createCreditService } from './credits.js'
import { createCustomerService } from './customers.js'
import { createDeviceService } from './devices.js'
import { createEventBus } from './events.js'
import { createLeaseService } from './leases.js'
import { createOrderService } from './orders.js'
import { createTokenService } from './tokens.js'
import { createUsageService } from './usage.js'

export interface ServicesOptions {
  db: Db
  catalog: Catalog
  keyring: Keyring
  issuer: string
  audience: string
  tokenTtlSec: number
  now: () => number
}

/** Every service of the server, over one repository (each SQL statement prepared once) and one event bus. */
export function createServices(options: ServicesOptions) {
  const { catalog, keyring, now } = options
  const repo = createRepository(options.db)
  const events = createEventBus(repo, now)
  const credits = createCreditService({ repo, catalog, events, now })
  const tokens = createTokenService({
    credits,
    repo,
    catalog,
    keyring,
    issuer: options.issuer,
    audience: options.audience,
    ttlSec: options.tokenTtlSec,
    now,
  })
  const usage = createUsageService({ repo, catalog, events, credits, now })
  return {
    credits,
    events,
    tokens,
    usage,
    orders: createOrderService({ repo, catalog, events, credits, now }),
    devices: createDeviceService({ repo, tokens, events, now }),
    access: createAccessService({ repo, catalog, events, now }),
    customers: createCustomerService({ repo, events, usage, now }),
    leases: createLeaseService({
      repo,
      catalog,
      keyring,
      events,
      issuer: options.issuer,
      audience: options.audience,
      now,
    }),
  }
}

export type Services = ReturnType<typeof createServices>
