import type { core } from 'zod/mini'

type Issue = core.$ZodIssue

const SIZE_UNITS: Record<string, string> = { string: ' characters', array: ' items', set: ' items' }

interface Described {
  path: PropertyKey[]
  text: string
}

const under = (path: PropertyKey[], inner: Described[]): Described[] =>
  inner.map((described) => ({ path: [...path, ...described.path], text: described.text }))

/** A zod issue as words a person can act on: what was expected, not only where. */
function describeIssue(issue: Issue): Described[] {
  const at = (text: string): Described[] => [{ path: issue.path, text }]
  // A message of our own (a refinement's) says it best; zod/mini's default is the bare "Invalid input".
  if (issue.message && issue.message !== 'Invalid input') return at(issue.message)
  switch (issue.code) {
    case 'invalid_type':
      return at(`expected ${issue.expected}`)
    case 'too_big':
      return at(`at most ${String(issue.maximum)}${SIZE_UNITS[issue.origin] ?? ''}`)
    case 'too_small':
      return at(`at least ${String(issue.minimum)}${SIZE_UNITS[issue.origin] ?? ''}`)
    case 'invalid_format':
      return at(issue.format === 'regex' ? `must match ${issue.pattern}` : `must be a valid ${issue.format}`)
    case 'invalid_value':
      return at(`expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}`)
    case 'invalid_union': {
      // The branch that got furthest into the value is the one the author meant (an object for a feature, not
      // `true`): describe its issues, under the union's path.
      let deepest: Issue[] | undefined
      for (const branch of issue.errors)
        if (branch.length > 0 && (deepest === undefined || branch[0]!.path.length > deepest[0]!.path.length))
          deepest = branch
      if (deepest === undefined || deepest[0]!.path.length === 0) return at('matches no allowed shape')
      return under(issue.path, deepest.flatMap(describeIssue))
    }
    case 'invalid_key':
    case 'invalid_element':
      return under(issue.path, issue.issues.flatMap(describeIssue))
    default:
      return at('invalid')
  }
}

/** Each issue as `path: what is wrong`, e.g. `ent.features.api-calls.cap.period: expected "hour" or "day" …`. */
export function describeClaimIssues(issues: readonly Issue[]): string[] {
  return issues
    .flatMap(describeIssue)
    .map(({ path, text }) => `${path.map(String).join('.') || '(root)'}: ${text}`)
}
