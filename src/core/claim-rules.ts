/*
 * The building blocks of the claims check (`claims-check.ts`): rules for strings, numbers, literals, arrays,
 * objects, records and unions that say what is wrong in the words and at the paths zod's would, and return the
 * value as zod's output holds it. The rules of format version 2's fields (`claims-check-v2.ts`) are made of them too.
 */

export type Path = readonly (string | number)[]
/** Where a rule is: one array for the whole check, pushed and popped, copied only into a problem. */
export type Stack = (string | number)[]

/** One thing wrong with the claims: where, and what was expected, in the words `describeClaimIssues` uses. */
export interface ClaimProblem {
  readonly path: Path
  readonly text: string
}

/** A problem as found: `hard` ones stop an object's refinements, as zod's aborting issues do. */
interface Found extends ClaimProblem {
  readonly hard: boolean
}
export type Problems = Found[]
/**
 * A rule checks a value, adds what is wrong to `problems`, and returns the value as the output holds it (URLs
 * trimmed, objects stripped of unknown keys), or as given when it is wrong. It passed if it added nothing.
 */
export type Rule = (value: unknown, path: Stack, problems: Problems) => unknown

export const MAX_NAME = 128
export const MAX_LIST = 256
export const MAX_DATE = 253_402_300_799
const HTTP_URL = /^https?:\/\//i
const TAB_OR_NEWLINE = /[\t\n\r]/g

export const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)
/** As zod's record test: an object whose constructor (if any) is an ordinary one. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (!isObject(value)) return false
  const made = value.constructor
  if (typeof made !== 'function') return true
  const prototype = made.prototype
  return isObject(prototype) && Object.hasOwn(prototype, 'isPrototypeOf')
}
export const hard = (problems: Problems, path: Path, text: string) =>
  problems.push({ path: [...path], text, hard: true })
export const soft = (problems: Problems, path: Path, text: string) =>
  problems.push({ path: [...path], text, hard: false })

/** Unicode code points in a string: a surrogate pair is one. */
function codePoints(value: string): number {
  let count = value.length
  for (let i = 0; i < value.length - 1; i++) {
    if ((value.charCodeAt(i) & 0xfc00) === 0xd800 && (value.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      count--
      i++
    }
  }
  return count
}

/**
 * Length bounds. As zod's, they apply to anything with a `length`, even a value of the wrong type (an array where
 * a string belongs is also too long), and say the unit of what was given. A string is measured in code points,
 * counted only when its UTF-16 length leaves the answer in doubt.
 */
function lengthWithin(value: unknown, path: Path, problems: Problems, min?: number, max?: number): void {
  if (value === null || value === undefined) return
  const units = (value as { length?: unknown }).length
  if (units === undefined) return
  const text = typeof value === 'string'
  const unit = Array.isArray(value) ? ' items' : text ? ' characters' : ''
  if (min !== undefined) {
    const length = text && (units as number) >= min && (units as number) < min * 2 ? codePoints(value) : units
    if (!((length as number) >= min)) soft(problems, path, `at least ${min}${unit}`)
  }
  if (max !== undefined) {
    const length = text && (units as number) > max ? codePoints(value) : units
    if (!((length as number) <= max)) soft(problems, path, `at most ${max}${unit}`)
  }
}

export function string(min?: number, max?: number): Rule {
  return (value, path, problems) => {
    if (typeof value !== 'string') hard(problems, path, 'expected string')
    lengthWithin(value, path, problems, min, max)
    return value
  }
}

export function number(min: number, max: number | undefined, integer: boolean): Rule {
  return (value, path, problems) => {
    if (typeof value !== 'number' || !Number.isFinite(value)) {
      hard(problems, path, 'expected number')
      return value
    }
    if (integer) {
      if (!Number.isInteger(value)) {
        hard(problems, path, 'expected int')
        return value
      }
      if (!Number.isSafeInteger(value))
        soft(
          problems,
          path,
          value > 0 ? `at most ${Number.MAX_SAFE_INTEGER}` : `at least ${Number.MIN_SAFE_INTEGER}`,
        )
    }
    if (value < min) soft(problems, path, `at least ${min}`)
    if (max !== undefined && value > max) soft(problems, path, `at most ${max}`)
    return value
  }
}

export const name = string(1, MAX_NAME)
export const boolean: Rule = (value, path, problems) => {
  if (typeof value !== 'boolean') hard(problems, path, 'expected boolean')
  return value
}
export const numericDate = number(0, MAX_DATE, true)
export const count = number(0, undefined, true)

/** A rule that can say, without a problem to write, whether it takes a value: a union tries it first for free. */
type QuickRule = Rule & { readonly takes?: (value: unknown) => boolean }

export function literal(...values: readonly unknown[]): QuickRule {
  const takes = (value: unknown) => values.includes(value)
  const rule: QuickRule = (value, path, problems) => {
    if (!takes(value)) hard(problems, path, `expected ${values.map((v) => JSON.stringify(v)).join(' or ')}`)
    return value
  }
  return Object.assign(rule, { takes })
}

export function array(item: Rule, min?: number, max?: number): Rule {
  return (value, path, problems) => {
    // As zod does: an array past its length bound is only too long (its items are not looked at), and its parent's
    // own rules do not run after it.
    if (Array.isArray(value) && max !== undefined && value.length > max) {
      hard(problems, path, `at most ${max} items`)
      return value
    }
    let out = value
    if (!Array.isArray(value)) hard(problems, path, 'expected array')
    else {
      // An index loop, not map(): a hole in the array is an element, and undefined.
      const items: unknown[] = []
      for (let i = 0; i < value.length; i++) {
        path.push(i)
        items.push(item(value[i], path, problems))
        path.pop()
      }
      out = items
    }
    lengthWithin(value, path, problems, min, max)
    return out
  }
}

export const names = array(name, undefined, MAX_LIST)

/**
 * URLs that passed lately, as given, beside their output. Every customer's token on a plan carries its upgrade hints'
 * URLs: each is parsed once, not once per token (parsing them was a sixth of checking a token's claims). Bounded: it
 * starts over past `MAX_URLS_PASSED`.
 */
const urlsPassed = new Map<string, string>()
const MAX_URLS_PASSED = 256

/** An http(s) URL as zod's `z.url({ protocol: /^https?$/ })` takes it: trimmed, tabs and newlines removed. */
export const url: Rule = (value, path, problems) => {
  const passed = urlsPassed.get(value as string)
  if (passed !== undefined) return passed
  const before = problems.length
  let out = value
  if (typeof value !== 'string') hard(problems, path, 'expected string')
  else {
    const trimmed = value.trim()
    if (HTTP_URL.test(trimmed) && URL.canParse(trimmed)) out = trimmed.replace(TAB_OR_NEWLINE, '')
    else soft(problems, path, 'must be a valid url')
  }
  lengthWithin(out, path, problems, undefined, 2048)
  // Nothing wrong: it was a string, and `out` is what it reads as.
  if (problems.length === before) {
    if (urlsPassed.size >= MAX_URLS_PASSED) urlsPassed.clear()
    urlsPassed.set(value as string, out as string)
  }
  return out
}

type Shape = Record<string, readonly [rule: Rule, optional: boolean]>

/** Whether a problem from `from` on is hard: a loop, not a slice, as this runs for every object of every token. */
function hasHard(problems: Problems, from: number): boolean {
  for (let i = from; i < problems.length; i++) if (problems[i]!.hard) return true
  return false
}

/**
 * An object of known keys, in the shape's order; unknown keys dropped. `refine` runs unless a hard problem was
 * found inside, as zod's refinements do, on the output so far.
 */
export function object(
  shape: Shape,
  refine?: (out: Record<string, unknown>, path: Stack, problems: Problems) => void,
): Rule {
  // Parallel arrays, read by index: every object of every token goes through this loop.
  const keys = Object.keys(shape)
  const rules = keys.map((key) => shape[key]![0])
  const optionals = keys.map((key) => shape[key]![1])
  // Which keys an object has, found from its own few (for-in, which lists what `value[key]` reads: inherited
  // enumerable keys too), so that only those are read: a feature claim has one or two of its shape's sixteen, and
  // reading the others, each a key the object lacks, was a third of checking a token's claims. Not for a shape
  // with a key every object inherits unlisted (`toString`), nor one past a mask's 31 bits: there every key is read.
  const at = new Map(keys.map((key, i) => [key, i]))
  const masked = keys.length <= 31 && !keys.some((key) => key in Object.prototype)
  return (value, path, problems) => {
    if (!isObject(value)) {
      hard(problems, path, 'expected object')
      return value
    }
    let present = masked ? 0 : -1
    if (masked)
      for (const key in value) {
        const i = at.get(key)
        if (i !== undefined) present |= 1 << i
      }
    const before = problems.length
    const out: Record<string, unknown> = {}
    for (let i = 0; i < keys.length; i++) {
      if ((present & (1 << i)) === 0 && optionals[i]) continue
      const key = keys[i]!
      const field = value[key]
      if (field === undefined && optionals[i]) continue
      path.push(key)
      out[key] = rules[i]!(field, path, problems)
      path.pop()
    }
    if (refine !== undefined && !hasHard(problems, before)) refine(out, path, problems)
    return out
  }
}

export const required = (rule: Rule) => [rule, false] as const
export const optional = (rule: Rule) => [rule, true] as const

/**
 * The first rule that takes the value. When none does: the problems of the only one that failed softly, else of
 * the one that got furthest into the value (as `describeClaimIssues` reports a zod union), else that it matches no
 * shape.
 */
export function union(first: QuickRule, second: Rule): Rule {
  const takes = first.takes
  return (value, path, problems) => {
    // Every claim of a good token takes one of the rules: only a failure pays for the comparison below. A first
    // rule that says it does not take the value is not run until the second fails too: a feature that is an
    // object no longer writes, and drops, why it is not `true` (ten such messages a realistic token).
    let ownFirst: Problems | undefined
    let outFirst: unknown
    if (takes === undefined || takes(value)) {
      ownFirst = []
      outFirst = first(value, path, ownFirst)
      if (ownFirst.length === 0) return outFirst
    }
    const ownSecond: Problems = []
    const outSecond = second(value, path, ownSecond)
    if (ownSecond.length === 0) return outSecond
    if (ownFirst === undefined) {
      ownFirst = []
      outFirst = first(value, path, ownFirst)
    }
    const tried = [ownFirst, ownSecond]
    const outs = [outFirst, outSecond]
    // As zod: when only one rule found nothing but soft problems (a length, a range), its problems are the answer.
    const softOnly = tried.filter((list) => !list.some((problem) => problem.hard))
    if (softOnly.length === 1) {
      problems.push(...softOnly[0]!)
      return outs[tried.indexOf(softOnly[0]!)]
    }
    const depth = (list: Problems) => list[0]!.path.length - path.length
    let deepest: Problems | undefined
    for (const list of tried) if (deepest === undefined || depth(list) > depth(deepest)) deepest = list
    if (depth(deepest!) === 0) hard(problems, path, 'matches no allowed shape')
    else for (const problem of deepest!) problems.push({ ...problem, hard: true })
    return value
  }
}

/** A record of names to values; a `__proto__` key is dropped, as zod drops it. */
export function record(valueRule: Rule): Rule {
  return (value, path, problems) => {
    if (!isPlainObject(value)) {
      hard(problems, path, 'expected record')
      return value
    }
    const out: Record<string, unknown> = {}
    for (const key of Object.keys(value)) {
      if (key === '__proto__') continue
      const before = problems.length
      path.push(key)
      name(key, path, problems)
      if (problems.length === before) out[key] = valueRule(value[key], path, problems)
      else for (let i = before; i < problems.length; i++) problems[i] = { ...problems[i]!, hard: true }
      path.pop()
    }
    return out
  }
}
