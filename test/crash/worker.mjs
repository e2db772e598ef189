// An app in a process of its own, on the built package, in the configuration the docs recommend (file storage in a
// folder): it runs the steps it is given and prints one JSON line after each, so the test can kill it with SIGKILL
// at the moment it chooses. argv[2] is the configuration as JSON.
import { createEntitlements, metering } from '../../dist/index.js'
import { createFileStorage } from '../../dist/node.js'

const config = JSON.parse(process.argv[2])
const offset = config.clockOffsetMs ?? 0
const client = createEntitlements({
  metering,
  ...(config.server ? { server: config.server } : { token: config.token }),
  keys: config.keysUrl ? new URL(config.keysUrl) : config.keys,
  issuer: config.issuer,
  audience: config.audience,
  storage: createFileStorage(config.storageDir),
  ...(config.usage ? { usage: config.usage } : {}),
  platform: { now: () => Date.now() + offset },
})
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`)
const subject = config.subject
const context = subject === undefined ? {} : { subject }

for (const step of config.steps) {
  if (step.check) {
    const decision = await client.check(step.check, context)
    say({ step: 'check', allowed: decision.allowed, reason: decision.reason, source: decision.source })
  } else if (step.consume) {
    const answers = []
    for (let i = 0; i < (step.times ?? 1); i++) {
      if (step.sync) await client.load(subject)
      const decision = step.sync
        ? client.consumeSync(step.consume, context)
        : await client.consume(step.consume, context)
      answers.push(decision.allowed ? 'allowed' : decision.reason)
    }
    say({ step: 'consume', answers })
  } else if (step.record) {
    for (let i = 0; i < (step.times ?? 1); i++) client.record(step.record, step.amount ?? 1, context)
    say({ step: 'record', times: step.times ?? 1 })
  } else if (step.flush) {
    say({ step: 'flush', ...(await client.flush()) })
  } else if (step.wait) {
    await new Promise((resolve) => setTimeout(resolve, step.wait))
    say({ step: 'wait' })
  } else if (step.hang) {
    say({ step: 'hang' })
    setInterval(() => {}, 1000)
    await new Promise(() => {})
  } else if (step.close) {
    say({ step: 'close', ...(await client.close({ deadlineMs: step.close })) })
  }
}
