import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../fleet/redis-server.js'

// `npm run example:browser | example:react | example:express`, as a user runs them: started, used through the URL
// they print (in Chromium for the pages), upgraded with the order command they print, and stopped with Ctrl-C.

beforeAll(() => {
  execFileSync(process.execPath, ['scripts/build-examples.mjs'], { stdio: 'inherit' })
})
let browser: Browser | undefined
afterAll(async () => {
  await browser?.close()
})

/** Starts an example; resolves once it printed where to open it, with what it printed and the process. */
async function start(which: string) {
  const port = await freePort()
  const child = spawn(process.execPath, ['examples/.build/examples.js', which, '--port', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stderr!.on('data', (chunk) => {
    err += chunk
  })
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk) => {
      out += chunk
      if (out.includes('Ctrl-C stops it')) resolve()
    })
    child.on('exit', () => reject(new Error(`${which} example ended: ${err}`)))
  })
  const url = /open (http:\S+)/.exec(out)![1]!
  const folder = /SQLite in (\S+)\)/.exec(out)![1]!
  const upgrade = /upgrade acme while it runs: npm run order -- (.+)/.exec(out)![1]!.split(' ')
  return { child, url, folder, upgrade, out: () => out, err: () => err }
}

/** Ctrl-C: resolves with the exit code once the example has stopped. */
function interrupt(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('exit', (code) => resolve(code))
    child.kill('SIGINT')
  })
}

describe('the example commands', () => {
  it('example:express serves the Express app for acme, and stops on Ctrl-C, leaving nothing behind', async () => {
    const example = await start('express')
    expect(example.out()).toContain(`try: curl -H 'x-customer-id: acme' ${example.url}/api/reports/export`)
    const exported = await fetch(`${example.url}/api/reports/export`, {
      headers: { 'x-customer-id': 'acme' },
    })
    expect(exported.status).toBe(200)
    const sso = await fetch(`${example.url}/api/sso/config`, { headers: { 'x-customer-id': 'acme' } })
    expect(sso.status).toBe(403)
    expect(await interrupt(example.child)).toBe(0)
    expect(example.out()).toContain('stopped')
    expect(existsSync(example.folder)).toBe(false)
  })

  for (const [which, plan] of [
    ['browser', '#status'],
    ['react', '#plan'],
  ] as const) {
    it(`example:${which} shows acme's plan in Chromium${which === 'react' ? ', and the printed upgrade reaches the page' : ''}`, async () => {
      const example = await start(which)
      try {
        browser ??= await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] })
        const page = await browser.newPage()
        const errors: string[] = []
        page.on('pageerror', (error) => errors.push(error.message))
        await page.goto(example.url)
        await page.waitForFunction(
          (selector) => document.querySelector(selector)?.textContent === 'starter',
          plan,
        )
        if (which === 'react') {
          // The order command the example printed, as a user would paste it.
          execFileSync(process.execPath, ['examples/.build/order.js', ...example.upgrade], { stdio: 'pipe' })
          await page.waitForFunction(
            () => document.querySelector('#plan')?.textContent === 'business',
            undefined,
            {
              timeout: 10_000,
            },
          )
        }
        expect(errors).toEqual([])
        await page.close()
      } finally {
        expect(await interrupt(example.child)).toBe(0)
      }
      expect(example.err()).toBe('')
    })
  }
})
