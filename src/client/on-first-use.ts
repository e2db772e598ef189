import { EntitlementError } from '../core/errors.js'
import { withGetters } from '../platform/with-getters.js'

/**
 * A part of the client made the first time it is needed, from code imported then (`import()`): in the browser build
 * that code is a chunk of its own, so a page that never calls it never downloads it; the Node builds hold it inline.
 * A chunk that could not be fetched (the page went offline) is an `EntitlementError` (`server_unavailable`), and the
 * next use tries again.
 */
export function onFirstUse<T>(what: string, make: () => Promise<T>) {
  let made: T | undefined
  let making: Promise<T> | undefined
  const part = {
    /** The part, made now if it was not. */
    load(): Promise<T> {
      if (made !== undefined) return Promise.resolve(made)
      making ??= make().then(
        (part) => (made = part),
        (error: unknown) => {
          making = undefined
          throw new EntitlementError(
            'server_unavailable',
            `the ${what} code could not be loaded: ${String(error)}`,
            {
              cause: error,
            },
          )
        },
      )
      return making
    },
    /** Settles once a load under way ends (made or not): at once when none is. */
    settled(): Promise<unknown> {
      return making?.catch(() => undefined) ?? Promise.resolve()
    },
  }
  return withGetters(part, {
    /** The part, if it was made. */
    current: (): T | undefined => made,
  })
}
