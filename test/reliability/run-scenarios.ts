/**
 * Runs every reliability scenario at full size and prints its figures and verdict:
 * `npm run scenarios` (which builds first and runs node with `--expose-gc`). Arguments:
 * scenario names to run only those; `--fast` to run the spec sizes instead; `--findings`
 * to run the repros of known bugs in src/ instead. Exits 1 when any claim fails (claims a
 * known bug breaks are printed but not counted).
 */
import '../../src/polyfill.js'
import { FINDINGS } from './scenarios/findings.js'
import { SCENARIOS } from './scenarios/index.js'
import { isKnown } from './utils/scenario.js'
import type { Figures, Scenario } from './utils/scenario.js'

const args = process.argv.slice(2)
if (args.includes('--findings')) {
  for (const finding of FINDINGS) {
    const figures = await finding.run()
    console.log(`## ${finding.name} (${finding.status}): ${finding.title}\n  ${figures.bug ? 'BUG PRESENT' : 'no bug'}: ${JSON.stringify(figures)}`)
  }
  process.exit(0)
}
const fast = args.includes('--fast')
const only = args.filter(a => !a.startsWith('--'))
const chosen = SCENARIOS.filter(s => only.length === 0 || only.includes(s.name))
if (chosen.length === 0) {
  console.error(`no scenario named ${only.join(', ')}; there are ${SCENARIOS.map(s => s.name).join(', ')}`)
  process.exit(2)
}

let failures = 0
const started = Date.now()
for (const scenario of chosen as Array<Scenario<unknown, Figures>>) {
  const size = fast ? scenario.fast : scenario.full
  console.log(`\n## ${scenario.name}: ${scenario.title}`)
  console.log(`size: ${JSON.stringify(size)}`)
  const t0 = Date.now()
  const log = (line: string): void => { console.log(`  [${((Date.now() - t0) / 1000).toFixed(1)} s] ${line}`) }
  try {
    const figures = await scenario.run(size, log)
    const failed = scenario.check(figures, size)
    for (const [name, value] of Object.entries(figures)) {
      console.log(`  ${name}: ${String(value)}`)
    }
    console.log(`  duration: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    const known = failed.filter(f => isKnown(scenario, f))
    const unknown = failed.filter(f => !isKnown(scenario, f))
    for (const f of known) {
      console.log(`  KNOWN FAILURE (a bug in src/, see docs/RELIABILITY.md): ${f}`)
    }
    for (const f of unknown) {
      console.log(`  FAILED: ${f}`)
    }
    failures += unknown.length
    if (failed.length === 0) {
      console.log('  verdict: every claim holds')
    }
  } catch (err: any) {
    failures++
    console.log(`  FAILED to run: ${String(err?.stack ?? err)}`)
  }
}
console.log(`\n${chosen.length} scenarios in ${((Date.now() - started) / 1000).toFixed(1)} s, ${failures} failed claims`)
process.exit(failures === 0 ? 0 : 1)
