import { randomBytes } from 'node:crypto'
import { type Catalog, sells } from '../catalog.js'
import { DomainError } from '../errors.js'
import type { Repository } from '../repository.js'
import type { AccessRequestInput } from '../schemas.js'
import type { EventBus } from './events.js'
import { activeLicense } from './licenses.js'

/** A user asks for a feature their plan lacks; an admin approves (a grant in the next token) or denies. */
export function createAccessService(options: {
  repo: Repository
  catalog: Catalog
  events: EventBus
  now: () => number
}) {
  const { repo, catalog, events, now } = options
  return {
    /** A pending request for the same feature is reused. */
    request(customerId: string, input: AccessRequestInput) {
      activeLicense(repo, customerId)
      if (!sells(catalog, input.feature))
        throw new DomainError('invalid', 'Unknown feature', `the catalog has no feature ${input.feature}`)
      return events.transaction(() => {
        const open = repo.pendingRequest(customerId, input.feature)
        if (open !== undefined) return { id: open, status: 'pending' as const, created: false }
        const id = `ar_${randomBytes(8).toString('hex')}`
        repo.insertRequest({
          id,
          customerId,
          feature: input.feature,
          requestedBy: input.requestedBy,
          note: input.note ?? null,
          at: now(),
        })
        return { id, status: 'pending' as const, created: true }
      })
    },

    list: (status: 'pending' | 'approved' | 'denied' | undefined) => repo.requests(status ?? null),

    decide(id: string, approve: boolean, by: string) {
      return events.transaction(() => {
        const request = repo.request(id)
        if (request === undefined)
          throw new DomainError('not_found', 'Unknown access request', `no access request ${id}`)
        if (request.status !== 'pending')
          throw new DomainError('conflict', 'Already decided', `access request ${id} was ${request.status}`)
        const status = approve ? 'approved' : 'denied'
        repo.decideRequest(id, status, by, now())
        if (approve) {
          repo.insertGrant(request.customer_id, request.feature, id, now())
          repo.bumpVersion(request.customer_id, now())
          events.record('entitlements', request.customer_id)
        }
        return { id, status, customerId: request.customer_id, feature: request.feature }
      })
    },
  }
}

export type AccessService = ReturnType<typeof createAccessService>
