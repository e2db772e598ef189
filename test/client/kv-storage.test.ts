import { describe, expect, it } from 'vitest'
import { createEntitlements, createKvStorage, type KvNamespaceLike } from '../../src/index.js'
import { createTestIssuer } from '../../src/testing.js'

/** A Workers KV namespace in memory, recording each write's options. */
function fakeKv() {
  const values = new Map<string, string>()
  const puts: Array<{ key: string; expirationTtl: number | undefined }> = []
  const namespace: KvNamespaceLike = {
    get: async (key) => values.get(key) ?? null,
    put: async (key, value, options) => {
      puts.push({ key, expirationTtl: options?.expirationTtl })
      values.set(key, value)
    },
    delete: async (key) => {
      values.delete(key)
    },
  }
  return { namespace, values, puts }
}

describe('createKvStorage: the client state in Workers KV', () => {
  it('lets a cold isolate answer from the last good token while the license server is out of reach', async () => {
    const issuer = await createTestIssuer()
    const token = await issuer.issue(
      { features: { export: true } },
      { subject: 'acme', expiresInSec: 86_400 },
    )
    const kv = fakeKv()
    const options = { keys: issuer.jwks, issuer: issuer.issuer, audience: issuer.audience }
    const warm = createEntitlements({
      ...options,
      server: { url: 'https://license.kv.test' },
      storage: createKvStorage(kv.namespace),
      platform: { fetch: async () => new Response(token) },
    })
    expect((await warm.check('export', { subject: 'acme' })).source).toBe('fresh')
    await warm.close({ deadlineMs: 100 })
    expect([...kv.values.keys()].every((key) => key.startsWith('entitle:'))).toBe(true)
    expect(kv.puts.every((put) => put.expirationTtl === 30 * 86_400)).toBe(true)
    // Another isolate, the license server down: the token stored in KV answers.
    const cold = createEntitlements({
      ...options,
      server: { url: 'https://license.kv.test', timeoutMs: 200 },
      storage: createKvStorage(kv.namespace),
      platform: { fetch: async () => Promise.reject(new TypeError('fetch failed')) },
    })
    expect(await cold.check('export', { subject: 'acme' })).toMatchObject({ allowed: true, source: 'stored' })
    await cold.close({ deadlineMs: 100 })
  })

  it('refuses a time-to-live Workers KV would refuse, and keeps apps apart by prefix', async () => {
    const kv = fakeKv()
    expect(() => createKvStorage(kv.namespace, { expirationTtlSec: 30 })).toThrow(/at least 60/)
    const one = createKvStorage(kv.namespace, { prefix: 'app-1:' })
    const two = createKvStorage(kv.namespace, { prefix: 'app-2:' })
    await one.set('k', 'one')
    await two.set('k', 'two')
    expect([await one.get('k'), await two.get('k')]).toEqual(['one', 'two'])
    await one.delete('k')
    expect([await one.get('k'), await two.get('k')]).toEqual([undefined, 'two'])
  })
})
