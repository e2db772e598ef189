/**
 * A `fetch` for the one connection the client keeps open for as long as it runs (the event stream), that does not
 * keep a Node process alive: its socket is `unref()`'d, as the client's timers are. A script exits when its own
 * work is done; a server stays up on its own listener, and the stream with it. Node's `fetch` cannot unref its
 * socket, so this is `node:http(s)`, reached through `process.getBuiltinModule` (Node >= 20.16) so the package
 * imports no Node built-in and bundles for any runtime. `undefined` where there is no such module: `fetch` is used.
 */
export function unrefFetch(): typeof fetch | undefined {
  const getBuiltin = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process
    ?.getBuiltinModule
  if (typeof getBuiltin !== 'function') return undefined
  const http = getBuiltin('node:http') as NodeHttp | undefined
  const https = getBuiltin('node:https') as NodeHttp | undefined
  const stream = getBuiltin('node:stream') as
    | { Readable: { toWeb(readable: unknown): ReadableStream } }
    | undefined
  if (http === undefined || https === undefined || stream === undefined) return undefined

  return (input, init) =>
    new Promise<Response>((resolve, reject) => {
      const url = new URL(input instanceof Request ? input.url : String(input))
      const request = (url.protocol === 'https:' ? https : http).request(
        url,
        {
          method: init?.method ?? 'GET',
          headers: plainHeaders(init?.headers),
          signal: init?.signal ?? undefined,
        },
        (response) => {
          const headers = new Headers()
          for (const [name, value] of Object.entries(response.headers)) {
            for (const one of Array.isArray(value) ? value : value === undefined ? [] : [value])
              headers.append(name, one)
          }
          try {
            const empty = response.statusCode === 204 || response.statusCode === 304
            resolve(
              new Response(empty ? null : stream.Readable.toWeb(response), {
                status: response.statusCode,
                statusText: response.statusMessage,
                headers,
              }),
            )
          } catch (error) {
            response.destroy()
            reject(error)
          }
        },
      )
      request.on('socket', (socket) => socket.unref())
      request.on('error', reject)
      request.end(init?.body ?? undefined)
    })
}

function plainHeaders(given: HeadersInit | undefined): Record<string, string> {
  const headers: Record<string, string> = {}
  new Headers(given).forEach((value, name) => {
    headers[name] = value
  })
  return headers
}

/** The part of `node:http` and `node:https` this uses (the package has no Node types in its browser build). */
interface NodeHttp {
  request(
    url: URL,
    options: { method: string; headers: Record<string, string>; signal: AbortSignal | undefined },
    onResponse: (response: {
      statusCode: number
      statusMessage: string
      headers: Record<string, string | string[] | undefined>
      destroy(): void
    }) => void,
  ): {
    on(event: 'socket', listener: (socket: { unref(): void }) => void): void
    on(event: 'error', listener: (error: unknown) => void): void
    end(body?: unknown): void
  }
}
