import { EntitlementError } from './errors.js'

type Version2 = typeof import('./version-2.js')

let code: Version2 | undefined
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
  if (code !== undefined) return Promise.resolve(code)
  loading ??= fetchCode().then(
    (loaded) => (code = loaded),
    (error: unknown) => {
      loading = undefined
      throw new EntitlementError(
        'server_unavailable',
        `the code for tokens of format version 2 could not be loaded: ${String(error)}`,
        { cause: error },
      )
    },
  )
  return loading
}

/**
 * The code of format version 2, loaded: a claim, a read model or a decision that holds anything of version 2 was
 * made from a payload the verifier loaded it for, so it is here whenever it is asked for.
 */
export function version2(): Version2 {
  if (code === undefined)
    throw new Error('entitle: the code of format version 2 is used before it was loaded')
  return code
}
