/** The browser build's twin of `show-in-node.ts`: no browser console asks for Node's inspect hook. */
export function showEntriesInNode(_type: unknown, _name: string): void {}
