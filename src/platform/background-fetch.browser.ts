/** The browser build: a page's connections never keep anything alive, so the stream uses `fetch`. */
export function unrefFetch(): typeof fetch | undefined {
  return undefined
}
