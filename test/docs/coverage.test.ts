import { readdirSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

// What the code offers (every option of every public options type, every error code, every CLI flag, every route
// of the reference server) is in the docs, read from the code itself, and what the docs list exists in the code.

const DOCS = [
  'README.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]
const docs = DOCS.map((page) => readFileSync(page, 'utf8')).join('\n')
/** Whether the docs name `name` in code (backticks, or a code block), whole. */
const named = (name: string, text = docs) =>
  new RegExp(`(^|[^\\w$])${name.replace(/[.$]/g, '\\$&')}($|[^\\w$])`, 'm').test(
    [...text.matchAll(/`([^`\n]+)`|```[a-z]*\n([\s\S]*?)```/g)].map((m) => m[1] ?? m[2]).join('\n'),
  )

/** The public options types, and every property in them (nested option objects too), from the compiler. */
function optionPaths(): string[] {
  const roots: Array<[string, string]> = [
    ['src/client/options.ts', 'EntitlementsClientOptions'],
    ['src/core/verify.ts', 'VerifyOptions'],
    ['src/core/keys.ts', 'RemoteJwksOptions'],
    ['src/redis/index.ts', 'RedisUsageStoreOptions'],
    ['src/express/index.ts', 'RequireEntitlementOptions'],
    ['src/openfeature/resolve.ts', 'EntitlementsProviderOptions'],
  ]
  const program = ts.createProgram(
    roots.map(([file]) => resolve(file)),
    {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      skipLibCheck: true,
    },
  )
  const checker = program.getTypeChecker()
  const paths = new Set<string>()
  const walk = (type: ts.Type, prefix: string, depth: number) => {
    for (const property of checker.getPropertiesOfType(checker.getNonNullableType(type))) {
      const declaration = property.declarations?.[0]
      // Only what this package declares: a Platform's fetch is the runtime's, a key's fields are jose's.
      if (declaration === undefined || !declaration.getSourceFile().fileName.includes('/src/')) continue
      const path = `${prefix}${property.name}`
      paths.add(path)
      const inner = checker.getNonNullableType(checker.getTypeOfSymbolAtLocation(property, declaration))
      if (depth < 2 && inner.getCallSignatures().length === 0 && !(inner.flags & ts.TypeFlags.StringLike))
        walk(inner, `${path}.`, depth + 1)
    }
  }
  for (const [file, name] of roots) {
    const source = program.getSourceFile(resolve(file))!
    const symbol = checker
      .getExportsOfModule(checker.getSymbolAtLocation(source)!)
      .find((exported) => exported.name === name)!
    walk(checker.getDeclaredTypeOfSymbol(symbol), '', 0)
  }
  return [...paths].sort()
}

describe('the docs cover the code', () => {
  it('every option of every public options type is named in the docs (by its last part)', () => {
    const paths = optionPaths()
    expect(paths.length).toBeGreaterThan(60)
    expect(paths.filter((path) => !named(path.split('.').at(-1)!))).toEqual([])
  })

  it('every error code is in docs/errors.md, and every code there exists', () => {
    const source = readFileSync('src/core/errors.ts', 'utf8')
    const union = /export type EntitlementErrorCode =([\s\S]*?)\n\n/.exec(source)![1]!
    const codes = [...union.matchAll(/\| '([a-z_]+)'/g)].map((m) => m[1]!)
    expect(codes.length).toBeGreaterThan(20)
    const page = readFileSync('docs/errors.md', 'utf8')
    const listed = [...page.matchAll(/^\| `([a-z_]+)` +\|/gm)].map((m) => m[1]!)
    expect(codes.filter((code) => !listed.includes(code))).toEqual([])
    expect(listed.filter((code) => !codes.includes(code))).toEqual([])
  })

  it('every flag of every CLI command is in docs/cli.md, and every flag there exists', () => {
    const help = readdirSync('src/cli')
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(`src/cli/${f}`, 'utf8'))
      .join('\n')
    const flags = new Set([...help.matchAll(/(?<![\w-])--([a-z][a-z-]+)/g)].map((m) => m[1]!))
    expect(flags.size).toBeGreaterThan(15)
    const page = readFileSync('docs/cli.md', 'utf8')
    const documented = new Set([...page.matchAll(/(?<![\w-])--([a-z][a-z-]+)/g)].map((m) => m[1]!))
    expect([...flags].filter((flag) => !documented.has(flag))).toEqual([])
    expect([...documented].filter((flag) => !flags.has(flag))).toEqual([])
  })

  it('every route of the reference server is in docs/server.md', () => {
    const routes = readdirSync('examples/license-server/src', { recursive: true })
      .map(String)
      .filter((f) => f.endsWith('.ts'))
      .flatMap((f) => [
        ...readFileSync(`examples/license-server/src/${f}`, 'utf8').matchAll(
          /\.(get|post|put|delete|patch)\(\s*'(\/[^']*)'/g,
        ),
      ])
      .map((m) => m[2]!)
    expect(routes.length).toBeGreaterThan(15)
    const page = readFileSync('docs/server.md', 'utf8')
    // A route is named by its own path, with its parameters as the page writes them (`:id` or `{id}`).
    const missing = routes.filter((route) => {
      const pattern = route.replace(/[.]/g, '\\.').replace(/:[a-zA-Z]+/g, '[^/\\s`]+')
      return !new RegExp(`(/admin)?${pattern}(?![\\w/-])`).test(page)
    })
    expect(missing).toEqual([])
  })
})
