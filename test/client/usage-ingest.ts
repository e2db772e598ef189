import { delay, HttpResponse, http } from 'msw'
import type { SetupServer } from 'msw/node'
import type { UsageLine } from '../../src/index.js'
import { SERVER } from './harness.js'

/** How the fake answers one usage request; `store-then-500` stores the batch and then fails (a lost answer). */
export type IngestAnswer =
  | 'ok'
  | '500'
  | 'network'
  | 'hang'
  | 'store-then-500'
  | { status: number; retryAfter?: string }
  | { rejectMetric: string }

export interface ReceivedBatch {
  readonly at: number
  readonly idempotencyKey: string | null
  readonly batch: string
  readonly lines: UsageLine[]
  readonly bytes: number
  readonly keepalive: boolean
  readonly authorization: string | null
}

/**
 * The usage endpoint of protocol v1 (`POST v1/usage`) on msw: it de-duplicates by line id as a real server must,
 * keeps totals per customer and metric, and answers from a script of failures.
 */
export function fakeUsageIngest(msw: SetupServer, clock: { now: number }, base = SERVER) {
  const stored = new Map<string, UsageLine>()
  const totals = new Map<string, number>()
  const received: ReceivedBatch[] = []
  const script: IngestAnswer[] = []
  let duplicates = 0

  function store(lines: UsageLine[], refuse: Set<string>) {
    for (const line of lines) {
      if (refuse.has(line.id)) continue
      if (stored.has(line.id)) {
        duplicates++
        continue
      }
      stored.set(line.id, line)
      const key = `${line.subject}/${line.metric}`
      totals.set(key, (totals.get(key) ?? 0) + line.amount)
    }
  }

  msw.use(
    http.post(`${base}/v1/usage`, async ({ request }) => {
      const text = await request.text()
      const body = JSON.parse(text) as { batch: string; lines: UsageLine[] }
      received.push({
        at: clock.now,
        idempotencyKey: request.headers.get('idempotency-key'),
        batch: body.batch,
        lines: body.lines,
        bytes: new TextEncoder().encode(text).length,
        keepalive: request.keepalive,
        authorization: request.headers.get('authorization'),
      })
      const answer = script.shift() ?? 'ok'
      if (answer === 'network') return HttpResponse.error()
      if (answer === 'hang') {
        await delay('infinite')
        return new HttpResponse('never')
      }
      if (answer === '500') return new HttpResponse('down', { status: 500 })
      if (answer === 'store-then-500') {
        store(body.lines, new Set())
        return new HttpResponse('lost', { status: 500 })
      }
      if (typeof answer === 'object' && 'status' in answer) {
        const headers: Record<string, string> = { 'content-type': 'application/problem+json' }
        if (answer.retryAfter) headers['retry-after'] = answer.retryAfter
        return new HttpResponse(JSON.stringify({ title: 'no' }), { status: answer.status, headers })
      }
      const refuse = new Set(
        typeof answer === 'object'
          ? body.lines.filter((line) => line.metric === answer.rejectMetric).map((line) => line.id)
          : [],
      )
      store(body.lines, refuse)
      return HttpResponse.json({
        accepted: body.lines.length - refuse.size,
        rejected: [...refuse].map((id) => ({ id, reason: 'unknown metric' })),
        at: clock.now,
      })
    }),
  )

  return {
    received,
    script,
    stored,
    /** Units the server counted (once per line id) for a customer and metric. */
    total: (subject: string | undefined, metric: string) => totals.get(`${subject}/${metric}`) ?? 0,
    get duplicates() {
      return duplicates
    },
  }
}
