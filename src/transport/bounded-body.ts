import { EntitlementError, type EntitlementErrorCode } from '../core/errors.js'

/**
 * A response body as text, read up to `maxBytes`: past that, the body is cancelled and an `EntitlementError` with
 * `code` is thrown. `response.text()` reads whatever arrives, so a URL that points at a large file instead of the
 * license server would be held in memory whole before anything could refuse it.
 */
export async function readBoundedText(
  response: Response,
  maxBytes: number,
  code: EntitlementErrorCode,
): Promise<string> {
  if (response.body === null) return ''
  const reader = response.body.getReader()
  const decoder = new TextDecoder()
  let text = ''
  let bytes = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return text + decoder.decode()
    bytes += value.byteLength
    if (bytes > maxBytes) {
      await reader.cancel().catch(() => {})
      throw new EntitlementError(code, `the license server's answer is longer than ${maxBytes} bytes`)
    }
    text += decoder.decode(value, { stream: true })
  }
}
