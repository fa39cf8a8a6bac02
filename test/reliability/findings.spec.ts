import assert from 'node:assert/strict'
import { FINDINGS } from './scenarios/findings.js'

describe('reliability: bugs the scenarios found stay fixed', function () {
  this.timeout(60_000)

  for (const finding of FINDINGS.filter(f => f.status === 'fixed')) {
    it(`no longer: ${finding.title}`, async () => {
      const figures = await finding.run()
      assert.equal(figures.bug, false, JSON.stringify(figures))
    })
  }
})
