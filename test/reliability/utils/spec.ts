import assert from 'node:assert/strict'
import { isKnown } from './scenario.js'
import type { Figures, Scenario } from './scenario.js'

/**
 * The spec of a scenario: one test that runs it at its fast size and asserts every claim
 * but its known failures (bugs in src/ with a repro in findings.ts), showing the figures
 * when one fails. `ms` bounds the test; the scenario bounds each of its own waits well
 * inside it.
 */
export function scenarioSpec<S, F extends Figures> (scenario: Scenario<S, F>, claim: string, ms = 120_000): void {
  describe(`reliability: ${scenario.title}`, function () {
    this.timeout(ms)

    it(claim, async () => {
      const figures = await scenario.run(scenario.fast)
      const failed = scenario.check(figures, scenario.fast).filter(f => !isKnown(scenario, f))
      assert.deepEqual(failed, [], `figures: ${JSON.stringify(figures)}`)
    })
  })
}
