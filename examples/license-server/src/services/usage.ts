import {
  formatUsageLineProblem,
  NEVER,
  type UsageBatchAnswer,
  type UsageLineAnswer,
  type UsageRefusalCode,
  usageLineSchemaProblem,
  type WireUsageLine,
} from 'entitle/protocol'
import type { Catalog } from '../catalog.js'
import type { LicenseRow, Repository } from '../repository.js'
import type { UsageBatchEnvelope } from '../schemas.js'
import { customerFor, type Scope } from './credentials.js'
import type { CreditService } from './credits.js'
import type { EventBus } from './events.js'
import { usageCaps, usageWindowEnd } from './licenses.js'
import { createUsageAlerts } from './usage-alerts.js'

/**
 * Usage ingest, each line judged on its own (protocol v1, `entitle/protocol`): a line id counts once per customer,
 * ever (the exactly-once contract of docs/metering.md); a line that breaks the protocol's rules, that the scope
 * may not write, or that cannot be priced is refused alone, with a code and a reason, and changes nothing. The
 * thresholds a batch crosses are recorded and published with it, in its transaction.
 */
export function createUsageService(options: {
  repo: Repository
  catalog: Catalog
  events: EventBus
  /** Burns what a line of a costed feature or metric costs, in the line's transaction. */
  credits: CreditService
  now: () => number
}) {
  const { repo, catalog, events, now } = options
  const alerts = createUsageAlerts({ repo, events, now })

  return {
    /** A customer's threshold crossings, newest window first. */
    alerts: (customerId: string) => alerts.list(customerId),

    /** A customer's usage per resource, per metric and window, newest window first. */
    resources: (customerId: string) =>
      repo.resourceUsage(customerId).map((row) => ({
        metric: row.metric,
        windowEnd: row.window_end === NEVER ? null : new Date(row.window_end).toISOString(),
        resource: row.resource,
        total: row.total,
      })),

    ingest(scope: Scope, batch: UsageBatchEnvelope): UsageBatchAnswer {
      const answers: UsageLineAnswer[] = []
      let accepted = 0
      let duplicates = 0
      const received = now()
      // Each customer's license and caps, read once per batch, not once per line.
      const priced = new Map<
        string,
        { license: LicenseRow; caps: ReturnType<typeof usageCaps> } | undefined
      >()
      const touched = new Set<string>()
      const refuse = (id: string | null, code: UsageRefusalCode, reason: string) => {
        answers.push({ id, status: 'refused', code, reason })
      }
      const store = (line: WireUsageLine) => {
        const who = customerFor(scope, line.subject)
        if ('refused' in who)
          return refuse(line.id, who.refused, who.refused === 'forbidden' ? 'forbidden' : 'subject required')
        const subject = who.customerId
        if (!catalog.meters.has(line.metric)) return refuse(line.id, 'unknown_metric', 'unknown metric')
        if (!priced.has(subject)) {
          const license = repo.license(subject)
          priced.set(subject, license && { license, caps: usageCaps(catalog, repo, license) })
        }
        const customer = priced.get(subject)
        if (customer === undefined) return refuse(line.id, 'unknown_customer', 'unknown customer')
        const { license, caps } = customer
        if ('code' in caps) return refuse(line.id, caps.code, caps.reason)
        // Usage cannot happen after it reached the server: a line dated later (a client clock running ahead) is
        // counted in the window it arrived in, not in one that has not begun, where no token would show it
        // until then and the window now would undercount.
        const end = usageWindowEnd(caps, license, line.metric, Math.min(line.start, received))
        if (typeof end !== 'number') return refuse(line.id, end.code, end.reason)
        const stored = repo.insertLine({
          id: line.id,
          customerId: subject,
          metric: line.metric,
          amount: line.amount,
          start: line.start,
          end: line.end,
          windowEnd: end,
          batch: batch.batch ?? null,
          at: received,
          resource: line.resource ?? null,
        })
        if (!stored) {
          duplicates++
          answers.push({ id: line.id, status: 'duplicate' })
          return
        }
        accepted++
        // Once per stored line (a duplicate returned above), inside this transaction: a line burns exactly once.
        options.credits.burnLine(
          license,
          line.metric,
          line.amount,
          Math.min(line.start, received),
          line.id,
          received,
        )
        const cap = caps.get(line.metric)
        const before = cap?.thresholds === undefined ? 0 : repo.total(subject, line.metric, end)
        repo.addTotal(subject, line.metric, end, line.amount)
        if (line.resource !== undefined)
          repo.addResourceTotal(subject, line.metric, end, line.resource, line.amount)
        alerts.observe(subject, line.metric, end, cap, before, before + line.amount)
        touched.add(subject)
        answers.push({ id: line.id, status: 'accepted' })
      }
      events.transaction(() => {
        for (const value of batch.lines) {
          const problem = usageLineSchemaProblem(value)
          if (problem === undefined) store(value as WireUsageLine)
          else {
            const id = (value as { id?: unknown } | null)?.id
            refuse(typeof id === 'string' ? id : null, 'invalid', formatUsageLineProblem(problem))
          }
        }
        for (const customerId of touched) repo.touchUsage(customerId, received)
      })
      const rejected = answers.flatMap((answer) =>
        answer.status === 'refused' ? [{ id: answer.id, code: answer.code, reason: answer.reason }] : [],
      )
      return { at: now(), accepted, duplicates, refused: rejected.length, lines: answers, rejected }
    },

    /**
     * Usage per metric and window; for a metric whose cap is soft (in the customer's plan as it stands), what is
     * included and what is overage: what a billing system would invoice.
     */
    totals(customerId: string) {
      const license = repo.license(customerId)
      const caps = license === undefined ? undefined : usageCaps(catalog, repo, license)
      const capOf = (metric: string) => (caps instanceof Map ? caps.get(metric) : undefined)
      return repo.usage(customerId).map((row) => {
        const cap = capOf(row.metric)
        return {
          metric: row.metric,
          windowEnd: row.window_end === NEVER ? null : new Date(row.window_end).toISOString(),
          total: row.total,
          ...(cap?.soft && cap.limit !== undefined
            ? { included: Math.min(row.total, cap.limit), overage: Math.max(0, row.total - cap.limit) }
            : {}),
        }
      })
    },
  }
}

export type UsageService = ReturnType<typeof createUsageService>
