// Writes docs/token-schema.json from the zod schema the verifier uses, so the documented format cannot drift
// from the enforced one. `--check` exits 1 when the committed file is out of date.
import { readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { toJSONSchema } from 'zod/mini'
import { entitlementTokenClaimsSchema } from '../dist/index.js'

const target = fileURLToPath(new URL('../docs/token-schema.json', import.meta.url))
const schema = {
  ...toJSONSchema(entitlementTokenClaimsSchema, { target: 'draft-2020-12', io: 'input' }),
  title: 'Entitlement token claims (typ: entitlement+jwt)',
}
const text = `${JSON.stringify(schema, null, 2)}\n`
if (process.argv.includes('--check')) {
  let committed = ''
  try {
    committed = readFileSync(target, 'utf8')
  } catch {}
  if (committed !== text) {
    console.error('docs/token-schema.json is out of date: run `npm run schema` and commit it')
    process.exit(1)
  }
} else {
  writeFileSync(target, text)
  console.log(`wrote ${target}`)
}
