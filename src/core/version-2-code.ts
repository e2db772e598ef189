type Version2 = typeof import('./version-2.js')

let code: Version2 | undefined

/**
 * The code of format version 2, once loaded (`load-version-2.ts`): a claim, a read model or a decision that holds
 * anything of version 2 was made from a payload the verifier loaded it for, so it is here whenever it is asked for.
 * This file imports nothing, so the code that reads it (the read model, the claims check, the decision) shares no
 * dependency with the loader's: a bundler then has nothing more to import beside version 2's chunk.
 */
export function version2(): Version2 {
  if (code === undefined)
    throw new Error('entitle: the code of format version 2 is used before it was loaded')
  return code
}

/** The code, if it was loaded. */
export const loadedVersion2 = (): Version2 | undefined => code

/** Holds the code once it is loaded. */
export function holdVersion2(loaded: Version2): Version2 {
  code = loaded
  return loaded
}
