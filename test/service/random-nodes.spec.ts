import assert from 'node:assert/strict'
import { randomNodes } from '../../src/service/iterative-lookup.js'
import { seededRandom } from '../../src/table/random.js'
import { fakePeerId, tcpAddr } from '../utils/peers.js'
import type { RandomNodesInit } from '../../src/service/iterative-lookup.js'
import type { PeerInfo } from '@libp2p/interface'

describe('randomNodes', () => {
  const random = seededRandom(21)
  const peers = (n: number): PeerInfo[] => Array.from({ length: n }, (_, i) => ({ id: fakePeerId(random), multiaddrs: [tcpAddr(`51.0.0.${i + 1}`)] }))

  function harness (table: PeerInfo[], lookupResults: PeerInfo[][]): { init: RandomNodesInit, sleeps: number[], lookups: number[] } {
    let now = 0
    const sleeps: number[] = []
    const lookups: number[] = []
    const init: RandomNodesInit = {
      readRandomNodes: n => [...table].reverse().slice(0, n),
      randomLookup: async () => {
        lookups.push(now)
        return lookupResults.shift() ?? []
      },
      sleep: async ms => {
        sleeps.push(ms)
        now += ms
      },
      minLookupInterval: 1000,
      batchSize: 4,
      now: () => now
    }
    return { init, sleeps, lookups }
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
    const { init, lookups } = harness([], [[], [], []])
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
