import assert from 'node:assert/strict'
import { LoadGauge, OVERLOAD_UTILIZATION } from '../../src/protocol/load.js'
import type { LoadMark } from '../../src/protocol/load.js'

describe('LoadGauge', () => {
  /** A gauge on a fake clock whose sampler reports `load` for any closed window. */
  function gauge (load: { value: number | undefined }): { gauge: LoadGauge, clock: { now: number }, samples: LoadMark[] } {
    const clock = { now: 0 }
    const samples: LoadMark[] = []
    const g = new LoadGauge({
      windowMs: 1000,
      mark: () => ({ at: clock.now }),
      sample: mark => { samples.push(mark); return load.value }
    })
    return { gauge: g, clock, samples }
  }

  it('reads nothing until a window has passed', () => {
    const load = { value: 1 }
    const { gauge: g, clock, samples } = gauge(load)
    clock.now = 999
    assert.equal(g.overloaded(), false)
    assert.equal(samples.length, 0)
  })

  it('reports the load of the window that just closed, from where that window opened', () => {
    const load = { value: 0.95 }
    const { gauge: g, clock, samples } = gauge(load)
    clock.now = 1000
    assert.equal(g.overloaded(), true)
    assert.deepEqual(samples.map(m => m.at), [0])
    assert.equal(g.current(), 0.95)
  })

  it('keeps the last figure within a window, and opens the next one where the last closed', () => {
    const load = { value: 0.95 }
    const { gauge: g, clock, samples } = gauge(load)
    clock.now = 1500
    assert.equal(g.overloaded(), true)
    load.value = 0.1
    clock.now = 2400
    assert.equal(g.overloaded(), true, 'the window opened at 1500 is still open')
    clock.now = 2500
    assert.equal(g.overloaded(), false)
    assert.deepEqual(samples.map(m => m.at), [0, 1500])
  })

  it('counts a load at the threshold as overloaded, just below it as not', () => {
    const load = { value: OVERLOAD_UTILIZATION }
    const { gauge: g, clock } = gauge(load)
    clock.now = 1000
    assert.equal(g.overloaded(), true)
    load.value = OVERLOAD_UTILIZATION - 0.01
    clock.now = 2000
    assert.equal(g.overloaded(), false)
  })

  it('never reports overload where the runtime cannot measure it', () => {
    const { gauge: g, clock } = gauge({ value: undefined })
    clock.now = 5000
    assert.equal(g.overloaded(), false)
    assert.equal(g.current(), 0)
  })

  it('reads the real event loop by default', async () => {
    const g = new LoadGauge({ windowMs: 50 })
    const until = Date.now() + 80
    while (Date.now() < until) {
      // a busy loop: the window is all work
    }
    assert.ok(g.current() > OVERLOAD_UTILIZATION, `a busy-waited window reads ${g.current()}`)
    await new Promise(resolve => setTimeout(resolve, 120))
    assert.ok(g.current() < 0.5, `an idle window reads ${g.current()}`)
  })
})
