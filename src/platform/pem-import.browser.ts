/**
 * The browser build has no PEM import (see `pem-import.ts`): a PEM key there is refused with a `TypeError` when the
 * verifier is made, naming what to pass instead.
 */
export const importPem: ((pem: string, alg: string) => Promise<CryptoKey>) | undefined = undefined
