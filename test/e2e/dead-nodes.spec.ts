import assert from 'node:assert/strict'
import { keyOf } from '../../src/table/key.js'
import { TestNodes, waitFor } from '../utils/libp2p.js'
import { startNetwork } from '../utils/network.js'
import type { DiscoveryNode } from '../utils/network.js'

describe('dead nodes', function () {
  this.timeout(120_000)
  const nodes = new TestNodes()
  after(async () => { await nodes.stop() })

  it('leave the survivors\' tables, and replacements and lookups fill the gaps', async () => {
    // small buckets, so buckets fill up and keep replacements
    const bucketSize = 4
    const network = await startNetwork(nodes, 24, { bucketSize, refreshInterval: 3000, autoDial: { enabled: false } })
    await waitFor(() => network.every(n => n.services.discovery.buckets().some(b => b.replacements.length > 0)),
      'every node to have replacements', 30_000)

    const dead = network.filter((_, i) => i % 3 === 1)
    const survivors = network.filter((_, i) => i % 3 !== 1)
    await Promise.all(dead.map(async n => { await n.stop() }))
    const deadIds = new Set(dead.map(n => n.peerId.toString()))

    const deadEntries = (node: DiscoveryNode): number => node.services.discovery.nodes().filter(n => deadIds.has(n.id.toString())).length
    await waitFor(() => survivors.every(n => deadEntries(n) === 0), 'every dead node to leave every table', 60_000)

    // each bucket holds min(bucketSize, live nodes in its range) again
    const want = (node: DiscoveryNode, index: number): number => {
      const table = (node.services.discovery as unknown as { table: { bucketIndexOf(key: Uint8Array): number } }).table
      const inRange = survivors.filter(s => !s.peerId.equals(node.peerId) && table.bucketIndexOf(keyOf(s.peerId)) === index).length
      return Math.min(bucketSize, inRange)
    }
    await waitFor(() => survivors.every(n => n.services.discovery.buckets().every(b => b.entries.length >= want(n, b.index))),
      'every bucket to refill with live nodes', 30_000)
    for (const node of survivors) {
      assert.equal(deadEntries(node), 0)
    }
  })
})
