/** One Server-Sent Event. */
export interface ServerSentEvent {
  event: string
  data: string
  id: string | undefined
}

/**
 * An incremental parser of the `text/event-stream` format (WHATWG HTML §9.2): feed it text as it arrives, get
 * complete events out. Comments, `retry` and unknown fields are ignored.
 */
export function createEventStreamParser(onEvent: (event: ServerSentEvent) => void): (chunk: string) => void {
  let buffer = ''
  let event = ''
  let data: string[] = []
  let id: string | undefined
  const dispatch = () => {
    if (data.length > 0) onEvent({ event: event || 'message', data: data.join('\n'), id })
    event = ''
    data = []
  }
  return (chunk) => {
    buffer += chunk
    let newline = buffer.search(/\r\n|\r|\n/)
    while (newline !== -1) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + (buffer[newline] === '\r' && buffer[newline + 1] === '\n' ? 2 : 1))
      if (line === '') dispatch()
      else if (!line.startsWith(':')) {
        const colon = line.indexOf(':')
        const field = colon === -1 ? line : line.slice(0, colon)
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
        if (field === 'event') event = value
        else if (field === 'data') data.push(value)
        else if (field === 'id') id = value
      }
      newline = buffer.search(/\r\n|\r|\n/)
    }
    // A stream that never sends a newline must not grow memory without bound.
    if (buffer.length > 1_000_000) buffer = ''
  }
}
