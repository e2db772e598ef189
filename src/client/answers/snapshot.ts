import { featureNames } from '../../core/decide-all.js'
import type { Decision } from '../../core/decision.js'
import type { ClientParts } from '../assemble.js'
import { balanceView } from '../credits/balance-view.js'
import type { CreditBalanceView } from '../credits/credit-types.js'
import type { CheckContext, EntitlementsSnapshot } from '../options.js'
import { SINGLE_TENANT_KEY } from '../tokens/cache-entry.js'

const NO_DECISIONS = Object.freeze(Object.create(null) as Record<string, Decision>)
const NO_CREDITS = Object.freeze(Object.create(null) as Record<string, CreditBalanceView>)

/**
 * Every feature's decision for one customer at one moment, from memory, each answered as `checkSync` would (and
 * counted as a check). Not in memory: the status says why, and a load is started unless a verdict is known.
 */
export function takeSnapshot(
  parts: Pick<ClientParts, 'tokens' | 'answerer' | 'platform' | 'lifecycle' | 'background' | 'metering'>,
  key: string,
  subject: string | undefined,
  context: Omit<CheckContext, 'subject'> | undefined,
): { snapshot: EntitlementsSnapshot; hit: boolean } {
  const { tokens, answerer } = parts
  const entry = tokens.get(key)
  const at = parts.platform.now()
  if (entry === undefined) {
    const verdict = tokens.verdict(key)
    if (verdict === undefined && !parts.lifecycle.closed) parts.background(tokens.load(key))
    const status =
      verdict === undefined
        ? 'not_loaded'
        : (verdict.reason ?? (verdict.error === 'token_expired' ? 'expired' : 'token_invalid'))
    return {
      snapshot: Object.freeze({
        subject,
        status,
        plan: undefined,
        at,
        decisions: NO_DECISIONS,
        credits: NO_CREDITS,
      }),
      hit: false,
    }
  }
  const asked: CheckContext = key === SINGLE_TENANT_KEY ? { ...context } : { ...context, subject: key }
  const decisions = Object.create(null) as Record<string, Decision>
  // One snapshot, one source: a token fetched for it is `fresh` in every decision, not only the first.
  const origin = entry.origin
  for (const name of featureNames(entry.entitlements)) {
    entry.origin = origin
    decisions[name] = answerer.answer(entry, key, name, asked)
  }
  let credits = NO_CREDITS
  if (entry.entitlements.credits.size > 0) {
    const balances = Object.create(null) as Record<string, CreditBalanceView>
    for (const type of entry.entitlements.credits.keys())
      balances[type] = balanceView(parts.metering?.credits, key, entry.entitlements, type, at)!
    credits = Object.freeze(balances)
  }
  const snapshot = Object.freeze({
    subject: entry.entitlements.subject,
    status: 'loaded' as const,
    plan: entry.entitlements.plan.id,
    at,
    decisions: Object.freeze(decisions),
    credits,
  })
  return { snapshot, hit: true }
}
