import { EntitlementError } from './errors.js'
import { holdVersion2, loadedVersion2 } from './version-2-code.js'

type Version2 = typeof import('./version-2.js')

let loading: Promise<Version2> | undefined

/**
 * Loads what only a token of format version 2 needs (per-resource grants, pools, credits: their claim rules, their
 * read model, their decisions): in the browser build a chunk of its own, fetched the first time a token says any
 * of it, so an app whose customers need nothing of version 2 never downloads it; the Node builds hold it inline. A
 * chunk that could not be fetched (the page went offline) is an `EntitlementError` (`server_unavailable`), which
 * proves nothing about the token, and the next token tries again.
 */
export function loadVersion2(
  /** How the code is fetched: a test passes one that fails, as a page offline does. */
  fetchCode: () => Promise<Version2> = () => import('./version-2.js'),
): Promise<Version2> {
  const loaded = loadedVersion2()
  if (loaded !== undefined) return Promise.resolve(loaded)
  loading ??= fetchCode().then(holdVersion2, (error: unknown) => {
    loading = undefined
    throw new EntitlementError(
      'server_unavailable',
      `the code for tokens of format version 2 could not be loaded: ${String(error)}`,
      { cause: error },
    )
  })
  return loading
}
