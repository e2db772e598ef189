import { importSPKI } from 'jose'

/**
 * Imports a PEM `-----BEGIN PUBLIC KEY-----` (SPKI) block for one algorithm. Its own module so that the browser
 * build can leave it out (`pem-import.browser.ts`): jose's ASN.1 reader and the tables it needs are 3.7 KB
 * minified, for a key format a browser app has no reason to hold when the JWK is at hand.
 */
export const importPem: ((pem: string, alg: string) => Promise<CryptoKey>) | undefined = importSPKI
