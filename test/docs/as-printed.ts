import { execFile } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, startRedis } from '../fleet/redis-server.js'
import { LIVE_CLOCK, startTestServer, type TestServer } from '../server/helpers.js'

// The docs' "run it" paragraphs, run as a reader would: the orders the paragraph names placed on a reference server
// of its own, the environment it names and nothing else, the script started, and what it prints (or what the curl
// the paragraph shows prints) compared with the page's `<!-- output: PATH -->` block. The script must exit by itself.

const PAGES = [
  'README.md',
  ...readdirSync('docs')
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
]

/** One "run it" paragraph: the example, the orders it names, the curl it shows (if any), what it prints. */
export interface PrintedRun {
  readonly page: string
  readonly example: string
  readonly orders: ReadonlyArray<{ customer: string; sku: string; seats?: number; addons?: string[] }>
  readonly redis: boolean
  readonly curl: { readonly path: string; readonly headers: Record<string, string> } | undefined
  readonly output: string
}

export function printedRuns(): PrintedRun[] {
  const runs: PrintedRun[] = []
  for (const page of PAGES) {
    const text = readFileSync(page, 'utf8')
    for (const match of text.matchAll(/([^\n]+)\n\n<!-- output: (\S+) -->\n```text\n([\s\S]*?)\n```/g)) {
      const paragraph = match[1]!
      const orders = [...paragraph.matchAll(/`npm run order -- ([^`]+)`/g)].map(([, args]) => {
        const flag = (name: string) => new RegExp(`--${name} (\\S+)`).exec(args!)?.[1]
        const seats = flag('seats')
        const addons = [...args!.matchAll(/--addon (\S+)/g)].map(([, addon]) => addon!)
        return {
          customer: flag('customer')!,
          sku: flag('sku')!,
          ...(seats ? { seats: Number(seats) } : {}),
          ...(addons.length > 0 ? { addons } : {}),
        }
      })
      const curl = /`curl (?:-H '([^:]+): ([^']+)' )?127\.0\.0\.1:3000(\S+)`/.exec(paragraph)
      runs.push({
        page,
        example: match[2]!,
        orders,
        redis: paragraph.includes('REDIS_URL'),
        curl: curl ? { path: curl[3]!, headers: curl[1] ? { [curl[1]]: curl[2]! } : {} } : undefined,
        output: match[3]!,
      })
    }
  }
  return runs
}

/**
 * Runs `script` (a path node runs) as the paragraph says, and returns what it printed (or what the curl printed),
 * with the server it ran against, for checks of what reached it.
 */
export async function runAsPrinted(run: PrintedRun, script: string, cwd: string) {
  const server: TestServer = await startTestServer(LIVE_CLOCK, 3600)
  const redis = run.redis ? await startRedis() : undefined
  const stateDir = mkdtempSync(join(tmpdir(), 'entitle-printed-'))
  try {
    for (const order of run.orders)
      await server.purchase(order.customer, order.sku, {
        ...(order.seats ? { seats: order.seats } : {}),
        ...(order.addons ? { addons: order.addons } : {}),
      })
    // What the page names, and what any shell has: nothing of the test's own environment.
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LICENSE_SERVER: server.url,
      ENTITLE_SERVICE_KEY: server.serviceKey,
      ENTITLE_STATE_DIR: stateDir,
      ...(redis ? { REDIS_URL: redis.url } : {}),
    }
    if (run.curl === undefined) {
      const ran = await new Promise<{ code: number | null; stdout: string; stderr: string; ms: number }>(
        (resolve) => {
          const started = Date.now()
          const child = execFile(
            process.execPath,
            [script],
            { cwd, env, timeout: 20_000 },
            (_e, stdout, stderr) =>
              resolve({
                code: child.exitCode,
                stdout: String(stdout),
                stderr: String(stderr),
                ms: Date.now() - started,
              }),
          )
        },
      )
      return { ...ran, printed: ran.stdout.trimEnd(), server, stateDir }
    }
    const port = await freePort()
    const child = execFile(process.execPath, [script], { cwd, env: { ...env, PORT: String(port) } })
    let stderr = ''
    child.stderr?.on('data', (chunk) => {
      stderr += chunk
    })
    try {
      for (let i = 0; i < 200; i++) {
        const response = await fetch(`http://127.0.0.1:${port}${run.curl.path}`, {
          headers: run.curl.headers,
        }).catch(() => undefined)
        if (response !== undefined)
          return { code: 0, stdout: '', stderr, ms: 0, printed: await response.text(), server, stateDir }
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      throw new Error(`${script} did not listen on PORT`)
    } finally {
      child.kill()
    }
  } finally {
    await redis?.stop()
    // The caller reads the server after the run: it closes it.
  }
}
