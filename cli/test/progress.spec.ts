import assert from 'node:assert/strict'
import { Progress } from '../src/progress.js'
import { spread, summaryLines } from '../src/summary.js'
import type { DemoResult } from '../src/summary.js'

/** A stream that records what is written, a terminal or not. */
function stream (isTTY: boolean, columns?: number): { isTTY: boolean, columns?: number, written: string[], write(text: string): boolean } {
  const written: string[] = []
  return { isTTY, columns, written, write: (text: string) => { written.push(text); return true } }
}

describe('Progress', () => {
  describe('on a terminal', () => {
    it('rewrites one live line in place and ends it with a newline', () => {
      const out = stream(true, 80)
      const progress = new Progress({ stream: out })
      progress.update('1 of 3')
      progress.update('2 of 3')
      progress.done()
      assert.deepEqual(out.written, ['\r\x1b[2K1 of 3', '\r\x1b[2K2 of 3', '\n'])
    })

    it('prints a lasting line above the live line and redraws it', () => {
      const out = stream(true, 80)
      const progress = new Progress({ stream: out })
      progress.update('working')
      progress.log('milestone')
      assert.deepEqual(out.written, ['\r\x1b[2Kworking', '\r\x1b[2Kmilestone\n', '\r\x1b[2Kworking'])
    })

    it('cuts the live line to the terminal width so it never wraps', () => {
      const out = stream(true, 10)
      new Progress({ stream: out }).update('a line far wider than ten columns')
      assert.equal(out.written[0], '\r\x1b[2Ka line…')
    })
  })

  describe('on a pipe', () => {
    it('prints plain lines at most once per interval, and the last state when a phase ends', () => {
      let now = 0
      const out = stream(false)
      const progress = new Progress({ stream: out, now: () => now })
      progress.update('a')
      now = 500
      progress.update('b')
      now = 1000
      progress.update('c')
      now = 1200
      progress.update('d')
      progress.done()
      progress.done()
      assert.deepEqual(out.written, ['a\n', 'c\n', 'd\n'])
      assert.ok(out.written.every(text => !text.includes('\r') && !text.includes('\x1b')))
    })
  })
})

describe('demo summary', () => {
  const result: DemoResult = {
    options: { nodes: 4, transport: 'memory', lookups: 2, timeout: 30_000 },
    target: 3,
    startup: 100,
    fullTablesAfter: 1200,
    watched: 30_000,
    lookups: [{ accuracy: 1, ms: 20, answered: true }, { accuracy: 0, ms: 10_000, answered: false }],
    sizes: [3, 3, 3, 2],
    connections: [3, 3, 2, 2]
  }

  it('takes the lower middle as the median of an even count', () => {
    assert.deepEqual(spread([4, 1, 3, 2]), { min: 1, median: 2, max: 4 })
    assert.deepEqual(spread([]), { min: 0, median: 0, max: 0 })
  })

  it('reports a missed target and an unanswered lookup, and still counts as working', () => {
    const { lines, worked } = summaryLines(result)
    assert.equal(worked, true)
    assert.ok(lines.includes('  connected     not reached within 30.0s: 2/4 nodes have 3 connections now'))
    assert.ok(lines.includes('  lookups       1/2 answered, accuracy 50.0% of the true 3 closest (worst 0.0%), median 20 ms'))
    // every missed target is named, with how far off it is
    assert.ok(lines.includes('  missed        connected: 2/4 nodes have 3 connections after 30.0s'))
    assert.ok(lines.includes('  missed        lookups answered: 1/2, 1 short'))
    assert.ok(lines.includes('  missed        accuracy: 50.0% < 99.0%, 49.0 points short'))
    assert.equal(lines.filter(l => l.startsWith('  missed')).length, 3, 'the median (20 ms) is within 300 ms')
    assert.equal(lines.at(-1), '  result        ok, 3 targets missed (above)')
  })

  it('names a slow median and says when every target was met', () => {
    const slow = summaryLines({ ...result, connectedAfter: 2000, lookups: [{ accuracy: 1, ms: 450, answered: true }, { accuracy: 1, ms: 500, answered: true }] })
    assert.deepEqual(slow.lines.filter(l => l.startsWith('  missed')), ['  missed        median lookup: 450 ms > 300 ms, 150 ms over'])
    const met = summaryLines({ ...result, connectedAfter: 2000, lookups: [{ accuracy: 1, ms: 20, answered: true }, { accuracy: 1, ms: 30, answered: true }] })
    assert.equal(met.lines.at(-1), '  result        ok, every target met')
  })

  it('fails when no node learned of anyone it was not given', () => {
    const { worked, lines } = summaryLines({ ...result, sizes: [0, 1, 1, 1] })
    assert.equal(worked, false)
    assert.match(lines.at(-1)!, /discovery did not work/)
  })
})
