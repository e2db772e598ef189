/** A map whose entries can be listed: what Node's `util.inspect` is shown instead of private fields. */
interface Listable {
  readonly size: number
  entries(): Iterable<[string, unknown]>
}

/**
 * Makes `console.log` and `util.inspect` in Node show a map's entries, as for a `Map`. Its fields are private, so
 * without this a map full of features prints as `FrozenMap {}`, which reads as "nothing granted". The browser build
 * has a twin that does nothing (`show-in-node.browser.ts`): no browser console asks for it.
 */
export function showEntriesInNode(type: { prototype: Listable }, name: string): void {
  Object.defineProperty(type.prototype, Symbol.for('nodejs.util.inspect.custom'), {
    value(
      this: Listable,
      depth: number,
      options: { depth?: number | null; stylize(text: string, style: string): string },
      inspect: (value: unknown, options: object) => string,
    ): string {
      if (depth < 0) return options.stylize(`[${name}(${this.size})]`, 'special')
      const inner = { ...options, depth: options.depth == null ? null : options.depth - 1 }
      return inspect(new Map(this.entries()), inner).replace(/^Map/, name)
    },
  })
}
