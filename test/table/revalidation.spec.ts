import assert from 'node:assert/strict'
import { cryptoRandom, seededRandom } from '../../src/table/random.js'
import { nextRevalidateDelay, RevalidationOutcome } from '../../src/table/revalidation.js'
import { tcpAddr } from '../utils/peers.js'
import { checkInvariants, fillBucket, nodeAtDistance, publicIP, testTable } from '../utils/table.js'
import type { Table } from '../../src/table/table.js'
import type { PeerId } from '@libp2p/interface'

/**
 * After geth's `pingRecorder`: a fake transport that answers pings from the nodes marked
 * alive and records who was pinged.
 */
class PingRecorder {
  readonly alive = new Set<string>()
  readonly pinged: string[] = []

  setAlive (id: PeerId, alive: boolean): void {
    if (alive) {
      this.alive.add(id.toString())
    } else {
      this.alive.delete(id.toString())
    }
  }

  ping (id: PeerId): boolean {
    this.pinged.push(id.toString())
    return this.alive.has(id.toString())
  }
}

/** What the service does on each revalidation tick (geth `doRevalidate`). */
function doRevalidate (table: Table, transport: PingRecorder): RevalidationOutcome | undefined {
  const due = table.nodeToRevalidate()
  if (due == null) {
    return undefined
  }
  return table.revalidated(due.node, transport.ping(due.node.id))
}

describe('revalidation', () => {
  // geth TestTable_pingReplace: every combination of the last entry and its replacement
  // answering or not
  for (const lastAlive of [true, false]) {
    for (const newAlive of [true, false]) {
      it(`pingReplace: last entry ${lastAlive ? 'alive' : 'dead'}, replacement ${newAlive ? 'alive' : 'dead'}`, () => {
        const { table, random } = testTable()
        const transport = new PingRecorder()
        const nodes = fillBucket(table, 16, random)
        for (const n of nodes) {
          transport.setAlive(n.id, true)
        }
        const last = nodes[nodes.length - 1]!
        transport.setAlive(last.id, lastAlive)
        const replacement = nodeAtDistance(table, 256, publicIP(4000), random)
        transport.setAlive(replacement.id, newAlive)
        table.addFoundNode(replacement)

        // only one bucket is non-empty, so its last entry is the one checked
        const first = doRevalidate(table, transport)
        assert.equal(first, lastAlive ? RevalidationOutcome.Alive : RevalidationOutcome.Replaced)
        assert.deepEqual(transport.pinged, [last.id.toString()])
        assert.equal(table.getNode(last.id) != null, lastAlive, 'the last entry stays only if it answered')
        assert.equal(table.getNode(replacement.id) != null, !lastAlive, 'the replacement enters only if the last entry died')
        assert.equal(table.size, 16)
        if (lastAlive) {
          assert.ok(table.buckets()[16]!.entries[0]!.id.equals(last.id), 'an answering node moves to the front')
          assert.equal(table.getNode(last.id)?.livenessChecks, 1)
          assert.equal(table.buckets()[16]!.replacements.length, 1)
        } else {
          // the replacement sits last, so it is the next one checked
          const second = doRevalidate(table, transport)
          assert.equal(second, newAlive ? RevalidationOutcome.Alive : RevalidationOutcome.Removed)
          assert.equal(table.size, newAlive ? 16 : 15)
        }
        checkInvariants(table)
      })
    }
  }

  it('picks no bucket when every bucket is empty, without drawing from an empty range', () => {
    // cryptoRandom().int(0) would never return: the empty case must not draw
    const { table } = testTable({ random: cryptoRandom() })
    assert.equal(table.nodeToRevalidate(), undefined)
  })

  it('does nothing when the checked node is no longer the last entry', () => {
    const { table, random } = testTable()
    table.setInitDone()
    const nodes = fillBucket(table, 16, random, 3)
    const due = table.nodeToRevalidate()!
    assert.ok(due.node.id.equals(nodes[2]!.id))
    // while the ping was in flight, the node proved itself and moved to the front
    table.addInboundNode(nodes[2]!)
    assert.equal(table.revalidated(due.node, false), RevalidationOutcome.Moved)
    assert.equal(table.size, 3)
  })

  it('does nothing when the checked node left while the ping was in flight', () => {
    const { table, random } = testTable()
    const nodes = fillBucket(table, 16, random, 2)
    const due = table.nodeToRevalidate()!
    table.delete(nodes[1]!.id)
    assert.equal(table.revalidated(due.node, true), RevalidationOutcome.Moved)
    assert.equal(table.revalidated(due.node, false), RevalidationOutcome.Moved)
    assert.equal(table.size, 1)
  })

  it('skips replacements that no longer fit the IP limits', () => {
    const { table, random } = testTable({ tableIpLimit: 2 })
    // two entries of one /24 fill the table limit; a third of that /24 waits as a replacement
    const a = nodeAtDistance(table, 256, '51.40.0.1', random)
    const b = nodeAtDistance(table, 255, '51.40.0.2', random)
    const c = nodeAtDistance(table, 256, '51.40.0.3', random)
    table.addFoundNode(a)
    table.addFoundNode(b)
    table.addFoundNode(c)
    assert.equal(table.buckets()[16]!.replacements.length, 1)
    // a dies: its slot is released, so c may take it
    assert.equal(table.revalidated(table.getNode(a.id)!, false), RevalidationOutcome.Replaced)
    assert.ok(table.getNode(c.id) != null)
    checkInvariants(table)
  })

  it('picks the last entry of a random non-empty bucket', () => {
    const { table, random } = testTable()
    fillBucket(table, 16, random, 2)
    fillBucket(table, 15, random, 2, 100)
    const picked = new Set<number>()
    for (let i = 0; i < 50; i++) {
      const due = table.nodeToRevalidate()!
      picked.add(due.bucket)
      const bucket = table.buckets()[due.bucket]!
      assert.ok(bucket.entries[bucket.entries.length - 1]!.id.equals(due.node.id))
    }
    assert.deepEqual([...picked].sort(), [15, 16])
  })

  it('unprovenToRevalidate draws only from buckets whose last entry passed no check', () => {
    const { table, random } = testTable()
    fillBucket(table, 16, random, 2)
    fillBucket(table, 15, random, 2, 100)
    // bucket 15's last entry passes a check and moves to the front: its other entry, unchecked, is last now
    const first15 = table.buckets()[15]!.entries
    assert.equal(table.revalidated(first15[first15.length - 1]!, true), RevalidationOutcome.Alive)
    for (let i = 0; i < 20; i++) {
      const due = table.unprovenToRevalidate()!
      const bucket = table.buckets()[due.bucket]!
      assert.ok(bucket.entries[bucket.entries.length - 1]!.id.equals(due.node.id))
      assert.equal(due.node.livenessChecks, 0)
    }
    // once every entry of bucket 16 and the other of bucket 15 passed, only bucket 15 ends in an unchecked one
    for (const entry of table.buckets()[16]!.entries) {
      table.revalidated(entry, true)
    }
    assert.deepEqual(new Set(Array.from({ length: 10 }, () => table.unprovenToRevalidate()!.bucket)), new Set([15]))
    const last15 = table.buckets()[15]!.entries
    table.revalidated(last15[last15.length - 1]!, true)
    assert.equal(table.unprovenToRevalidate(), undefined, 'every bucket ends in a checked entry')
    assert.ok(table.nodeToRevalidate() != null, "geth's choice still picks one")
  })

  it('leaves an entry whose addresses an answer checked to the slow lane, until its addresses change', () => {
    const { table, random } = testTable()
    table.setInitDone()
    const [node] = fillBucket(table, 16, random, 1)
    assert.equal(table.unprovenToRevalidate()?.node.id.equals(node!.id), true)
    assert.equal(table.addrsChecked({ ...table.getNode(node!.id)!, addrs: [tcpAddr('51.9.9.9', 1)] }), false, 'not at the entry\'s addresses')
    assert.equal(table.addrsChecked(table.getNode(node!.id)!), true)
    assert.equal(table.unprovenToRevalidate(), undefined)
    assert.equal(table.getNode(node!.id)?.livenessChecks, 0, 'not a liveness check')
    assert.ok(table.nodeToRevalidate() != null, 'the slow lane still picks it')
    // the node itself contacts us from a new address: that one is unchecked
    table.addInboundNode({ id: node!.id, multiaddrs: [tcpAddr(publicIP(77), 4001)] })
    assert.equal(table.unprovenToRevalidate()?.node.id.equals(node!.id), true)
  })

  it('returns nothing to revalidate on an empty table', () => {
    assert.equal(testTable().table.nodeToRevalidate(), undefined)
  })

  describe('nextRevalidateDelay', () => {
    it('is uniform below the interval', () => {
      const random = seededRandom(9)
      const delays = Array.from({ length: 2000 }, () => nextRevalidateDelay(10_000, random))
      assert.ok(delays.every(d => d >= 0 && d < 10_000 && Number.isInteger(d)))
      const low = delays.filter(d => d < 5000).length
      assert.ok(low > 850 && low < 1150, `about half below the middle, got ${low}`)
    })
  })
})
