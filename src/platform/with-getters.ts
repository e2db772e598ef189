/** Where an object made by `withGetters` keeps its own getters, for the shared accessors to call. */
const OWN_GETTERS = Symbol()
type Holder = { readonly [OWN_GETTERS]: Record<string, () => unknown> }

/**
 * One accessor per property name, shared by every object that has it. V8 keeps two objects on one map (fast mode)
 * only if their accessors are the very same functions: a second object given getters of its own goes to dictionary
 * mode, as does every one after it. Each client after the first in a process (an app's second, a test's, a bench's)
 * then paid a generic lookup on each call of its token cache, clock, stats and meter.
 */
const accessors = new Map<string, (this: Holder) => unknown>()

/**
 * `methods` with `getters` added as read-only properties. Not `get size() {…}` in the literal: V8 (Node 20) makes
 * a literal with an accessor in dictionary mode, and each call of its methods then takes a generic lookup (the
 * trusted clock and the token cache, on every check: about 9 ns of a memoized check's 78). Nor each object's own
 * getter functions as accessors (see `accessors`). `test/unit/fast-objects.test.ts` holds both.
 */
export function withGetters<T extends object, G extends Record<string, () => unknown>>(
  methods: T,
  getters: G,
): T & { readonly [K in keyof G]: ReturnType<G[K]> } {
  Object.defineProperty(methods, OWN_GETTERS, { value: getters })
  for (const name in getters) {
    let get = accessors.get(name)
    if (get === undefined) {
      get = function (this: Holder) {
        return this[OWN_GETTERS][name]!()
      }
      accessors.set(name, get)
    }
    Object.defineProperty(methods, name, { get, enumerable: true })
  }
  return methods as T & { readonly [K in keyof G]: ReturnType<G[K]> }
}
