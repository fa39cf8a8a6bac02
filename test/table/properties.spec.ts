import assert from 'node:assert/strict'
import { distanceCompare, keyOf } from '../../src/table/key.js'
import { seededRandom } from '../../src/table/random.js'
import { RevalidationOutcome } from '../../src/table/revalidation.js'
import { fakePeerId, tcpAddr } from '../utils/peers.js'
import { checkInvariants, testTable } from '../utils/table.js'
import type { RandomSource } from '../../src/table/types.js'
import type { PeerId } from '@libp2p/interface'

interface PoolNode { id: PeerId, key: Uint8Array }

// a pool of peers shared by the property tests: building peer ids dominates their cost
function peerPool (size: number, random: RandomSource): PoolNode[] {
  return Array.from({ length: size }, () => {
    const id = fakePeerId(random)
    return { id, key: keyOf(id) }
  })
}

describe('Table properties', () => {
  const random = seededRandom(42)
  const pool = peerPool(3000, random)
  // few subnets, so the IP limits are exercised too
  const ipFor = (i: number): string => `51.${(i % 40)}.${i % 3}.${1 + (i % 250)}`
  const lanFor = (i: number): string => `127.0.${(i >> 8) & 0xff}.${i & 0xff}`

  it('closest returns the n closest nodes, sorted and distinct, over 2000 random tables', () => {
    for (let t = 0; t < 2000; t++) {
      const { table } = testTable({ self: pool[random.int(pool.length)]!.id }, t)
      const count = random.int(120)
      for (let i = 0; i < count; i++) {
        const j = random.int(pool.length)
        table.addFoundNode({ id: pool[j]!.id, multiaddrs: [tcpAddr(lanFor(j))] })
      }
      const target = random.bytes(32)
      const n = 1 + random.int(20)
      const result = table.closest(target, n)
      const all = table.nodes().sort((a, b) => distanceCompare(target, a.key, b.key))
      assert.equal(result.length, Math.min(n, table.size))
      assert.equal(new Set(result.map(r => r.id.toString())).size, result.length, 'distinct')
      for (let i = 1; i < result.length; i++) {
        assert.ok(distanceCompare(target, result[i - 1]!.key, result[i]!.key) < 0, 'sorted closest first')
      }
      // no closer node omitted: the result is exactly the head of the full sort
      assert.deepEqual(result.map(r => r.id.toString()), all.slice(0, n).map(r => r.id.toString()))
    }
  })

  it('closest with preferLive chooses live nodes first and fills with the closest of the rest', () => {
    const { table } = testTable({}, 7)
    for (let i = 0; i < 200; i++) {
      table.addFoundNode({ id: pool[i]!.id, multiaddrs: [tcpAddr(lanFor(i))] })
    }
    // pass a liveness check for a few nodes
    const live = table.nodes().slice(0, 5)
    for (const node of live) {
      table.revalidated(node, true)
    }
    const liveIds = new Set(live.map(n => n.id.toString()))
    for (let t = 0; t < 50; t++) {
      const target = random.bytes(32)
      const result = table.closest(target, 16, { preferLive: true })
      assert.equal(result.length, 16)
      assert.equal(result.filter(r => liveIds.has(r.id.toString())).length, 5, 'every live node is chosen')
      for (let i = 1; i < result.length; i++) {
        assert.ok(distanceCompare(target, result[i - 1]!.key, result[i]!.key) < 0)
      }
      const rest = table.closest(target, 11 + 5).filter(r => !liveIds.has(r.id.toString())).slice(0, 11)
      assert.deepEqual(result.filter(r => !liveIds.has(r.id.toString())).map(r => r.id.toString()), rest.map(r => r.id.toString()))
    }
    // with at least n live nodes, only live ones are returned
    assert.ok(table.closest(random.bytes(32), 3, { preferLive: true }).every(r => liveIds.has(r.id.toString())))
  })

  it('readRandomNodes returns exactly min(n, size) distinct table nodes for n below and above the size', () => {
    for (let t = 0; t < 300; t++) {
      const { table } = testTable({}, 1000 + t)
      const count = random.int(150)
      for (let i = 0; i < count; i++) {
        const j = random.int(pool.length)
        table.addFoundNode({ id: pool[j]!.id, multiaddrs: [tcpAddr(lanFor(j))] })
      }
      const inTable = new Set(table.nodes().map(n => n.id.toString()))
      for (const n of [0, 1, 16, table.size - 1, table.size, table.size + 1, table.size * 2 + 5]) {
        if (n < 0) {
          continue
        }
        const read = table.readRandomNodes(n)
        assert.equal(read.length, Math.min(n, table.size))
        const readIds = read.map(r => r.id.toString())
        assert.equal(new Set(readIds).size, readIds.length, 'distinct')
        assert.ok(readIds.every(id => inTable.has(id)), 'from the table')
      }
    }
  })

  it('readRandomNodes picks every node about equally often (uniform, unlike the seed\'s bucket heads)', () => {
    const { table } = testTable({}, 77)
    for (let i = 0; i < 300 && table.size < 40; i++) {
      table.addFoundNode({ id: pool[i]!.id, multiaddrs: [tcpAddr(lanFor(i))] })
    }
    const counts = new Map<string, number>()
    const rounds = 4000
    for (let r = 0; r < rounds; r++) {
      for (const node of table.readRandomNodes(4)) {
        counts.set(node.id.toString(), (counts.get(node.id.toString()) ?? 0) + 1)
      }
    }
    const expected = rounds * 4 / table.size
    for (const count of counts.values()) {
      assert.ok(Math.abs(count - expected) < expected * 0.25, `count ${count} near ${expected}`)
    }
    assert.equal(counts.size, table.size)
  })

  it('keeps its invariants through 20 000 random operations', () => {
    const { table } = testTable({}, 5)
    table.setInitDone()
    for (let step = 0; step < 20000; step++) {
      const j = random.int(400)
      const node = { id: pool[j]!.id, multiaddrs: [tcpAddr(random.int(4) === 0 ? ipFor(j + step) : ipFor(j))] }
      switch (random.int(6)) {
        case 0:
        case 1:
          table.addFoundNode(node)
          break
        case 2:
          table.addInboundNode(node)
          break
        case 3: {
          const due = table.nodeToRevalidate()
          if (due != null) {
            const outcome = table.revalidated(due.node, random.int(2) === 0)
            assert.ok(Object.values(RevalidationOutcome).includes(outcome))
          }
          break
        }
        case 4:
          table.dropFailedNode(node.id)
          break
        default:
          table.delete(node.id)
      }
      if (step % 50 === 0) {
        checkInvariants(table)
      }
    }
    checkInvariants(table)
    assert.ok(table.size > 0)
  })
})
