import type { Scope } from './services/credentials.js'

/** The request-scoped values middleware sets, typed for every route (`c.var`). */
export interface AppEnv {
  Variables: {
    /** Who is asking, from the bearer credential (`middleware/credentials.ts`). */
    scope: Scope
    /** The SHA-256 of the bearer credential: event streams are counted and closed per credential. */
    credential: string
    /** The raw body a signature covered (`middleware/order-signature.ts`). */
    rawBody: string
  }
}
