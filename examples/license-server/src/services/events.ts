import { EventEmitter } from 'node:events'
import type { EventRow, Repository } from '../repository.js'
import type { Scope } from './credentials.js'

/** A change a client should hear about over the event stream. */
export type LicenseEvent = EventRow

/** Replays after a reconnect hold at most this many events: a client further behind refreshes everything. */
export const REPLAY_LIMIT = 1000

/**
 * The server's changes as events: recorded inside a transaction, stored and published once it commits, dropped
 * on a rollback, so no client hears of a change that did not happen. `credentials` tells open streams a
 * customer's credentials were replaced.
 */
export function createEventBus(repo: Repository, now: () => number) {
  const emitter = new EventEmitter<{ event: [LicenseEvent]; credentials: [string] }>()
  emitter.setMaxListeners(0)
  let pending: Array<Omit<LicenseEvent, 'id'>> = []

  function publish(): void {
    const events = pending
    pending = []
    for (const event of events) {
      const id = repo.insertEvent(event.type, event.customerId, now(), event.data)
      emitter.emit('event', { ...event, id })
    }
  }

  return {
    emitter,
    /** Notes an event of the running transaction, with what it is about beyond its customer. */
    record(type: LicenseEvent['type'], customerId: string | null, data?: Record<string, unknown>): void {
      pending.push({ type, customerId, data: data === undefined ? null : JSON.stringify(data) })
    },
    /**
     * Runs `work` in a transaction (`immediate`: one that takes the write lock before it reads); publishes its
     * events after the commit, drops them on a rollback.
     */
    transaction<T>(work: () => T, immediate = false): T {
      try {
        const result = immediate ? repo.immediate(work) : repo.transaction(work)
        publish()
        return result
      } catch (error) {
        pending = []
        throw error
      }
    },
    /** Tells open streams that `customerId`'s credentials were replaced: streams opened with the old ones end. */
    credentialsReplaced(customerId: string): void {
      emitter.emit('credentials', customerId)
    },
    /** Events after `afterId` that `scope` may see, filtered before the limit, for `Last-Event-ID`. */
    since(scope: Scope, afterId: number): LicenseEvent[] {
      return repo.eventsSince(afterId, scope.kind === 'service' ? null : scope.customerId, REPLAY_LIMIT)
    },
    /** The newest event's id: where a client that polls starts from. */
    lastId: () => repo.lastEventId(),
  }
}

/** What a client reads of an event: its customer, and what else it is about. */
export function eventBody(event: LicenseEvent): Record<string, unknown> {
  return { subject: event.customerId, ...(event.data === null ? {} : JSON.parse(event.data)) }
}

/** A customer sees its own events; the service sees everything. */
export function visible(scope: Scope, event: LicenseEvent): boolean {
  return scope.kind === 'service' || event.customerId === scope.customerId
}

export type EventBus = ReturnType<typeof createEventBus>
