import assert from 'node:assert/strict'
import { setTimeout as delay } from 'node:timers/promises'
import { lookup } from '../../src/service/iterative-lookup.js'
import { keyOf } from '../../src/table/key.js'
import { seededRandom } from '../../src/table/random.js'
import { SimulatedNetwork } from '../utils/simulation.js'
import { fillBucket, nodeAtDistance, publicIP, testTable } from '../utils/table.js'
import type { LookupInit, LookupNode, QueryFunction } from '../../src/service/iterative-lookup.js'
import type { PeerInfo } from '@libp2p/interface'

const hex = (key: Uint8Array): string => Buffer.from(key).toString('hex')

function accuracy (found: LookupNode[], truth: Array<{ key: Uint8Array }>): number {
  const want = new Set(truth.map(t => hex(t.key)))
  return found.filter(f => want.has(hex(f.key))).length / truth.length
}

describe('lookup', () => {
  const network = new SimulatedNetwork(2000, 11)
  const random = seededRandom(12)

  function initFor (index: number, query: QueryFunction = network.query): LookupInit {
    return { table: network.tableOf(index), alpha: 3, bucketSize: 16, query }
  }

  it('finds the true 16 closest nodes of a 2000-node network', async () => {
    let total = 0
    for (let i = 0; i < 20; i++) {
      const target = random.bytes(32)
      const result = await lookup(initFor(random.int(2000)), target)
      total += accuracy(result.closest, network.trueClosest(target, 16))
      assert.equal(result.closest.length, 16)
    }
    assert.ok(total / 20 >= 0.99, `accuracy ${total / 20}`)
  })

  it('returns its result closest first, without duplicates, and never self', async () => {
    const source = 5
    const self = network.tableOf(source).selfKey
    // aim at self: self is the closest key there is, and must not be in the answer
    const result = await lookup(initFor(source), self)
    const keys = result.closest.map(n => hex(n.key))
    assert.equal(new Set(keys).size, keys.length)
    assert.ok(!keys.includes(hex(self)))
    const truth = network.trueClosest(self, 17).filter(n => hex(n.key) !== hex(self)).slice(0, 16)
    assert.deepEqual(keys, truth.map(n => n.hex))
  })

  it('keeps at most alpha requests in flight and asks each node once, never self', async () => {
    let inFlight = 0
    let maxInFlight = 0
    const asked: string[] = []
    const source = 7
    const query: QueryFunction = async (node, target, options) => {
      asked.push(hex(node.key))
      inFlight++
      maxInFlight = Math.max(maxInFlight, inFlight)
      await delay(1 + random.int(3))
      inFlight--
      return network.query(node, target, options)
    }
    const result = await lookup(initFor(source, query), random.bytes(32))
    assert.equal(maxInFlight, 3)
    assert.equal(new Set(asked).size, asked.length, 'no node asked twice')
    assert.ok(!asked.includes(hex(network.tableOf(source).selfKey)))
    assert.equal(result.queries, asked.length)
  })

  it('keeps as many requests in flight as concurrency() says before each request, at most alpha', async () => {
    let inFlight = 0
    // BOUNDED: one entry per request the lookup sends
    const inFlightAtAsk: number[] = []
    let limit = 1
    const query: QueryFunction = async (node, target, options) => {
      inFlight++
      inFlightAtAsk.push(inFlight)
      await delay(1 + random.int(3))
      inFlight--
      return network.query(node, target, options)
    }
    const result = await lookup({ ...initFor(9, query), concurrency: () => limit }, random.bytes(32))
    assert.ok(result.queries >= 16)
    assert.equal(Math.max(...inFlightAtAsk), 1, 'one at a time while concurrency() is 1')
    inFlightAtAsk.length = 0
    limit = 10
    await lookup({ ...initFor(9, query), concurrency: () => limit }, random.bytes(32))
    assert.equal(Math.max(...inFlightAtAsk), 3, 'never more than alpha')
    inFlightAtAsk.length = 0
    limit = 0
    const none = await lookup({ ...initFor(9, query), concurrency: () => limit }, random.bytes(32))
    assert.ok(none.queries >= 16, 'at least one request in flight, whatever concurrency() says')
    assert.equal(Math.max(...inFlightAtAsk), 1)
  })

  it('stops once the closest bucketSize nodes have all been asked', async () => {
    const asked = new Set<string>()
    const query: QueryFunction = async (node, target, options) => {
      asked.add(hex(node.key))
      return network.query(node, target, options)
    }
    const result = await lookup(initFor(9, query), random.bytes(32))
    for (const node of result.closest) {
      assert.ok(asked.has(hex(node.key)))
    }
    assert.ok(result.queries < 200, `a lookup in 2000 nodes takes tens of requests, not ${result.queries}`)
  })

  it('leaves failed nodes out of the result and counts the failures', async () => {
    const target = random.bytes(32)
    const dead = network.trueClosest(target, 3)
    for (const node of dead) {
      network.dead.add(node.hex)
    }
    try {
      const result = await lookup(initFor(20), target)
      const keys = new Set(result.closest.map(n => hex(n.key)))
      for (const node of dead) {
        assert.ok(!keys.has(node.hex), 'a dead node is not an answer')
      }
      assert.ok(result.failures >= 1)
      assert.ok(accuracy(result.closest, network.trueClosest(target, 16)) >= 0.9)
    } finally {
      network.dead.clear()
    }
  })

  it('keeps a node that answered with an empty list in the result, and counts the empty answer', async () => {
    const target = random.bytes(32)
    const closest = network.trueClosest(target, 1)[0]!
    const query: QueryFunction = async (node, key, options) => hex(node.key) === closest.hex ? [] : network.query(node, key, options)
    const result = await lookup(initFor(21, query), target)
    assert.equal(result.closest[0] != null && hex(result.closest[0].key), closest.hex, 'it answered, so it is the closest answer')
    assert.equal(result.empty, 1)
    assert.equal(result.failures, 0)
  })

  it('stops asking after bucketSize failed requests, however many nodes it has heard of', async () => {
    const source = 22
    const seeds = new Set(network.tableOf(source).closest(random.bytes(32), 0).map(n => hex(n.key)))
    const target = random.bytes(32)
    for (const node of network.tableOf(source).closest(target, 16)) {
      seeds.add(hex(node.key))
    }
    // the table's closest answer with 16 nodes each; every node they name is dead
    const query: QueryFunction = async (node, key, options) => {
      if (!seeds.has(hex(node.key))) {
        throw new Error('dead')
      }
      return network.query(node, key, options)
    }
    const result = await lookup(initFor(source, query), target)
    assert.ok(result.failures >= 16, `${result.failures} failures`)
    // the bound, plus requests already in flight when it was reached
    assert.ok(result.failures < 16 + 3, `${result.failures} failures`)
    assert.ok(result.queries <= seeds.size + 16 + 2, `${result.queries} requests`)
  })

  it('hands every node found to the table as a found node', async () => {
    const sim = new SimulatedNetwork(300, 13)
    const table = sim.tableOf(0)
    const before = table.size
    const found: string[] = []
    const query: QueryFunction = async (node, target, options) => {
      const answer = await sim.query(node, target, options)
      found.push(...answer.map(a => hex(keyOf(a.id))))
      return answer
    }
    // start from a nearly empty table: one node
    for (const node of table.nodes().slice(1)) {
      table.delete(node.id)
    }
    await lookup({ table, alpha: 3, bucketSize: 16, query }, random.bytes(32))
    assert.ok(table.size > 1, `the table grew from 1 (had ${before})`)
    const inTable = new Set(table.nodes().map(n => hex(n.key)))
    const buckets = table.buckets()
    for (const key of found) {
      if (key === hex(table.selfKey)) continue
      const bucket = buckets[table.bucketIndexOf(Buffer.from(key, 'hex'))]!
      // a node found is an entry, unless its bucket is full (then it was offered as a replacement)
      assert.ok(inTable.has(key) || bucket.entries.length === table.bucketSize, 'every node found was added')
    }
  })

  it('returns an empty result from an empty table without asking anyone', async () => {
    const sim = new SimulatedNetwork(10, 14)
    const table = sim.tableOf(0)
    for (const node of table.nodes()) {
      table.delete(node.id)
    }
    const result = await lookup({ table, alpha: 3, bucketSize: 16, query: sim.query }, random.bytes(32))
    assert.deepEqual(result.closest, [])
    assert.equal(result.queries, 0)
  })

  it('asks exactly the bucketSize closest nodes in one round when none knows anyone closer', async () => {
    const { table, random: r } = testTable({}, 31)
    // 16 seeds at log distance 255 from self; the first to answer names 4 nodes farther off
    fillBucket(table, 15, r, 16)
    const farther = Array.from({ length: 4 }, (_, i) => nodeAtDistance(table, 256, publicIP(1000 + i), r))
    let answers = 0
    const query: QueryFunction = async () => answers++ === 0 ? farther : []
    const result = await lookup({ table, alpha: 3, bucketSize: 16, query }, table.selfKey)
    assert.equal(result.queries, 16, 'the 16 closest, not one more')
    assert.equal(result.empty, 15)
    assert.equal(result.rounds, 1)
    assert.equal(result.closest.length, 16)
  })

  it('counts as rounds the longest chain of requests that waited on an earlier answer', async () => {
    const { table, random: r } = testTable({}, 32)
    const [seed] = fillBucket(table, 16, r, 1)
    const learned = nodeAtDistance(table, 255, publicIP(2000), r)
    const query: QueryFunction = async node => node.id.equals(seed!.id) ? [learned] : []
    const result = await lookup({ table, alpha: 3, bucketSize: 16, query }, table.selfKey)
    assert.equal(result.queries, 2)
    assert.equal(result.rounds, 2, 'the seed answered in round 1, the node it named in round 2')
  })

  it('ends with the nodes that answered so far once stop aborts, and cancels its requests in flight', async () => {
    const stop = new AbortController()
    let answered = 0
    // BOUNDED: one per request the lookup sends
    const cancelled: boolean[] = []
    const query: QueryFunction = async (node, target, options): Promise<PeerInfo[]> => {
      if (answered >= 4) {
        // from the fifth request on, nobody answers: the lookup waits until stop, which
        // comes once the answers already given are in
        setTimeout(() => { stop.abort() }, 20)
        await new Promise(resolve => options.signal?.addEventListener('abort', resolve, { once: true }))
        cancelled.push(options.signal?.aborted === true)
        throw new Error('cancelled')
      }
      answered++
      return network.query(node, target, options)
    }
    const result = await lookup(initFor(4, query), random.bytes(32), { stop: stop.signal })
    assert.equal(result.stopped, true)
    assert.equal(result.closest.length, 4, 'the nodes that answered')
    assert.equal(result.failures, 0, 'a request cut short by stop is no failure')
    await delay(10)
    assert.ok(cancelled.length > 0 && cancelled.every(Boolean), 'its requests in flight saw the stop')
    const done = await lookup(initFor(4), random.bytes(32), { stop: new AbortController().signal })
    assert.equal(done.stopped, false)
    assert.equal(done.closest.length, 16)
  })

  it('rejects when aborted, stop or no stop', async () => {
    const controller = new AbortController()
    const stop = new AbortController()
    controller.signal.addEventListener('abort', () => { stop.abort() })
    const query: QueryFunction = async (node, target, options): Promise<PeerInfo[]> => {
      controller.abort()
      return network.query(node, target, options)
    }
    await assert.rejects(lookup(initFor(3, query), random.bytes(32), { signal: controller.signal, stop: stop.signal }), { name: 'AbortError' })
  })

  it('rejects when aborted', async () => {
    const controller = new AbortController()
    const query: QueryFunction = async (node, target, options): Promise<PeerInfo[]> => {
      controller.abort()
      return network.query(node, target, options)
    }
    await assert.rejects(lookup(initFor(3, query), random.bytes(32), { signal: controller.signal }), { name: 'AbortError' })
  })
})
