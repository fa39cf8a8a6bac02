import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'

// this file runs as dist/test/polyfill.spec.js; mocha has loaded the polyfill already,
// so a fresh process shows what it does to the runtime's own Promise
const POLYFILL = fileURLToPath(new URL('../src/polyfill.js', import.meta.url))

const PROBE = `
const native = Promise.withResolvers
await import(${JSON.stringify(POLYFILL)})
const { promise, resolve } = Promise.withResolvers()
resolve(42)
console.log(JSON.stringify({ hadNative: typeof native === 'function', kept: native === undefined || Promise.withResolvers === native, value: await promise }))
`

describe('the Promise.withResolvers polyfill', () => {
  it('adds Promise.withResolvers where it is missing (Node 20) and leaves a native one alone (Node 22)', async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '--eval', PROBE], { timeout: 20_000 }, (err, out) => { err != null ? reject(err) : resolve(out) })
    })
    const probe = JSON.parse(stdout) as { hadNative: boolean, kept: boolean, value: number }
    assert.equal(probe.value, 42)
    assert.ok(probe.kept, 'the polyfill replaced the runtime\'s own Promise.withResolvers')
    assert.equal(probe.hadNative, Number(process.versions.node.split('.')[0]) >= 22)
  })
})
