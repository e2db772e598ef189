/**
 * `methods` with `getters` added as read-only properties. Not `get size() {…}` in the literal: V8 (Node 20) makes
 * a literal with an accessor in dictionary mode, and each call of its methods then takes a generic lookup (the
 * trusted clock and the token cache, on every check: about 9 ns of a memoized check's 78). Accessors added after
 * stay fast. `test/unit/fast-objects.test.ts` holds it.
 */
export function withGetters<T extends object, G extends Record<string, () => unknown>>(
  methods: T,
  getters: G,
): T & { readonly [K in keyof G]: ReturnType<G[K]> } {
  for (const [name, get] of Object.entries(getters))
    Object.defineProperty(methods, name, { get, enumerable: true })
  return methods as T & { readonly [K in keyof G]: ReturnType<G[K]> }
}
