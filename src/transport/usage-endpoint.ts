import { readBoundedText } from './bounded-body.js'
import { type LicenseServerClient, MAX_PROBLEM_BYTES } from './license-server-client.js'
import { failure } from './requester.js'
import { classifyUsageAnswer, type UsageResponse, unanswered } from './usage-response.js'

/** A usage answer holds one short answer per line of a batch. */
const MAX_USAGE_ANSWER_BYTES = 4_194_304

/**
 * Sends one usage batch (`POST v1/usage`, its id as `Idempotency-Key` and in the body, since a beacon-like
 * keepalive request is the one place a header could be lost). Never throws: every outcome is a value the meter
 * acts on. Apart from the license server's other endpoints so that a client made without metering carries none of
 * the usage protocol.
 */
export function sendUsage(
  server: Pick<LicenseServerClient, 'request'>,
  now: () => number,
  batchId: string,
  body: string,
  keepalive: boolean,
): Promise<UsageResponse> {
  const headers = {
    accept: 'application/json',
    'content-type': 'application/json',
    'idempotency-key': batchId,
  }
  return server
    .request('v1/usage', { method: 'post', headers, body, keepalive }, async (response) => {
      const limit = response.ok ? MAX_USAGE_ANSWER_BYTES : MAX_PROBLEM_BYTES
      const text = await readBoundedText(response, limit, 'server_rejected').catch(() => '')
      const at = now()
      return classifyUsageAnswer(
        {
          status: response.status,
          body: text,
          date: response.headers.get('date'),
          failure: response.ok ? undefined : failure(response, text, at),
        },
        at,
      )
    })
    .catch(unanswered)
}
