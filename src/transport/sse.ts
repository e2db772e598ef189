/** One Server-Sent Event. */
export interface ServerSentEvent {
  event: string
  data: string
  id: string | undefined
}

/** A stream that never ends a line, or an event, must not grow memory without bound. */
const MAX_LINE = 1_000_000
/** An event's data past this is dropped whole, up to its end (a truncated event could be misread). */
const MAX_EVENT_DATA = 1_000_000

/**
 * An incremental parser of the `text/event-stream` format (WHATWG HTML §9.2): feed it text as it arrives, get
 * complete events out. Comments, `retry` and unknown fields are ignored. A line may end in CRLF, LF or CR, and a
 * chunk may end between the CR and the LF of one CRLF: that is one line end, not two. A leading BOM is dropped.
 */
export function createEventStreamParser(
  onEvent: (event: ServerSentEvent) => void,
  /** A block with an `id` and no data: no event, but the cursor a reconnect resumes from (as the standard says). */
  onId?: (id: string) => void,
): (chunk: string) => void {
  let buffer = ''
  let event = ''
  let data: string[] = []
  /** The data of the event being read, in characters: past the limit the event is dropped whole. */
  let dataSize = 0
  let id: string | undefined
  /** This block set the id. */
  let idInBlock = false
  let first = true
  /** The last chunk ended in CR: a LF at the start of the next one belongs to it. */
  let pendingCr = false
  const dispatch = () => {
    if (data.length > 0) onEvent({ event: event || 'message', data: data.join('\n'), id })
    else if (idInBlock && id !== undefined) onId?.(id)
    idInBlock = false
    event = ''
    data = []
    dataSize = 0
  }
  const line = (text: string) => {
    if (text === '') return dispatch()
    if (text.startsWith(':')) return
    const colon = text.indexOf(':')
    const field = colon === -1 ? text : text.slice(0, colon)
    let value = colon === -1 ? '' : text.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') event = value
    else if (field === 'data') {
      dataSize += value.length + 1
      if (dataSize <= MAX_EVENT_DATA) data.push(value)
      else data = []
    }
    // An id with a NUL is ignored, as the standard says.
    else if (field === 'id' && !value.includes('\u0000')) {
      id = value
      idInBlock = true
    }
  }
  return (chunk) => {
    let text = chunk
    if (first && text.length > 0) {
      first = false
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1)
    }
    if (pendingCr && text.startsWith('\n')) text = text.slice(1)
    pendingCr = false
    buffer += text
    let start = 0
    for (let i = 0; i < buffer.length; i++) {
      const char = buffer.charCodeAt(i)
      if (char !== 10 && char !== 13) continue
      line(buffer.slice(start, i))
      if (char === 13) {
        if (i + 1 === buffer.length) pendingCr = true
        else if (buffer.charCodeAt(i + 1) === 10) i++
      }
      start = i + 1
    }
    buffer = buffer.slice(start)
    if (buffer.length > MAX_LINE) buffer = ''
  }
}
