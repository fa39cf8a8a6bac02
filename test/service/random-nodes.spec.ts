import assert from 'node:assert/strict'
import { randomNodes } from '../../src/service/iterative-lookup.js'
import { seededRandom } from '../../src/table/random.js'
import { fakePeerId, tcpAddr } from '../utils/peers.js'
import type { RandomNodesInit } from '../../src/service/iterative-lookup.js'
import type { PeerInfo } from '@libp2p/interface'

describe('randomNodes', () => {
  const random = seededRandom(21)
  const peers = (n: number): PeerInfo[] => Array.from({ length: n }, (_, i) => ({ id: fakePeerId(random), multiaddrs: [tcpAddr(`51.0.0.${i + 1}`)] }))

  function harness (table: PeerInfo[], lookupResults: PeerInfo[][], repeatLast = false): { init: RandomNodesInit, sleeps: number[], lookups: number[], reads: number[] } {
    let now = 0
    const sleeps: number[] = []
    const lookups: number[] = []
    const reads: number[] = []
    const init: RandomNodesInit = {
      readRandomNodes: n => {
        reads.push(n)
        return [...table].reverse().slice(0, n)
      },
      randomLookup: async () => {
        lookups.push(now)
        if (lookups.length > 10) {
          throw new Error('the stream keeps looking up instead of yielding')
        }
        return (repeatLast && lookupResults.length === 1 ? lookupResults[0] : lookupResults.shift()) ?? []
      },
      sleep: async ms => {
        sleeps.push(ms)
        now += ms
      },
      minLookupInterval: 1000,
      batchSize: 4,
      now: () => now
    }
    return { init, sleeps, lookups, reads }
  }

  async function take (stream: AsyncGenerator<PeerInfo>, n: number): Promise<PeerInfo[]> {
    const out: PeerInfo[] = []
    for await (const node of stream) {
      out.push(node)
      if (out.length === n) {
        break
      }
    }
    return out
  }

  it('yields every table node once before it looks anything up', async () => {
    const table = peers(10)
    const { init, lookups } = harness(table, [])
    const seen = new Set<string>()
    for await (const node of randomNodes(init)) {
      seen.add(node.id.toString())
      if (seen.size === 10) {
        break
      }
    }
    assert.equal(seen.size, 10)
    assert.equal(lookups.length, 0, 'table reads come first')
  })

  it('runs random lookups at least minLookupInterval apart when the table holds nothing new', async () => {
    const { init, lookups, sleeps } = harness([], [[], [], []])
    const found = peers(2)
    let yielded = 0
    const controller = new AbortController()
    const results: PeerInfo[][] = [[], [], found]
    init.randomLookup = async () => {
      lookups.push(init.now())
      return results.shift() ?? []
    }
    for await (const node of randomNodes(init, { signal: controller.signal })) {
      assert.ok(found.some(f => f.id.equals(node.id)))
      if (++yielded === 2) {
        break
      }
    }
    assert.equal(lookups.length, 3)
    for (let i = 1; i < lookups.length; i++) {
      assert.ok(lookups[i]! - lookups[i - 1]! >= 1000, `lookups ${lookups[i - 1]} and ${lookups[i]} are 1 s apart`)
    }
    assert.deepEqual(sleeps, [1000, 1000], 'each wait is what is left of the interval')
  })

  it('reads the table again after each batch of batchSize nodes', async () => {
    const { init, reads } = harness(peers(10), [])
    await take(randomNodes(init), 5)
    assert.equal(reads.length, 2, 'four from the first read, the fifth from the second')
  })

  it('yields from a lookup only the nodes it has not yielded yet', async () => {
    const [a, b] = peers(2)
    const { init } = harness([a!], [[a!, b!]])
    const ids = (await take(randomNodes(init), 2)).map(n => n.id.toString())
    assert.deepEqual(ids, [a!.id.toString(), b!.id.toString()])
  })

  it('starts over, table first, once a lookup finds nothing new', async () => {
    const [a] = peers(1)
    const { init, lookups } = harness([a!], [[a!]], true)
    const ids = (await take(randomNodes(init), 3)).map(n => n.id.toString())
    assert.deepEqual(ids, [a!, a!, a!].map(n => n.id.toString()))
    assert.equal(lookups.length, 2, 'one lookup between two rounds of the table')
  })

  it('ends when aborted', async () => {
    const { init } = harness(peers(3), [])
    const controller = new AbortController()
    const iterator = randomNodes(init, { signal: controller.signal })
    await iterator.next()
    controller.abort()
    await assert.rejects(iterator.next(), { name: 'AbortError' })
  })
})
