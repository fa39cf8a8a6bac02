import assert from 'node:assert/strict'
import { seededRandom } from '../../src/table/random.js'
import { dialedPeers, dialerOf } from '../utils/dialed.js'
import { TestNodes, waitFor } from '../utils/libp2p.js'
import { accuracy, startNetwork } from '../utils/network.js'
import type { DiscoveryNode } from '../utils/network.js'

describe('a network of 30 nodes, each given one bootnode', function () {
  this.timeout(120_000)
  const nodes = new TestNodes()
  let network: DiscoveryNode[]
  const discovered = new Map<string, Set<string>>()

  before(async () => {
    network = await startNetwork(nodes, 30)
    for (const node of network) {
      const seen = new Set<string>()
      discovered.set(node.peerId.toString(), seen)
      node.addEventListener('peer:discovery', evt => { seen.add(evt.detail.id.toString()) })
    }
  })

  after(async () => { await nodes.stop() })

  it('fills every table to min(16, N − 1) nodes', async () => {
    await waitFor(() => network.every(n => n.services.discovery.size >= 16), 'every table to hold 16 nodes', 60_000)
  })

  it('finds the true 16 closest nodes with lookups from 10 nodes to 10 keys each (accuracy ≥ 0.95)', async () => {
    const random = seededRandom(30)
    let total = 0
    let count = 0
    for (let s = 0; s < 10; s++) {
      const source = network[random.int(network.length)]!
      for (let t = 0; t < 10; t++) {
        const target = random.bytes(32)
        const found = await source.services.discovery.lookup(target)
        // a node's own key is not an answer to its own lookup: compare against the others
        total += accuracy(found, network.filter(n => !n.peerId.equals(source.peerId)), target)
        count++
      }
    }
    assert.ok(total / count >= 0.95, `accuracy ${(total / count).toFixed(3)}`)
  })

  it('connects every node to at least min(16, N − 1) peers through the auto-dialer, or to its reduced target when its process stays overloaded', async () => {
    // only connections a dialer is responsible for count, on either side: request and
    // inbound connections alone would pass a bare connection count with the dialer off
    // a node whose process stayed overloaded (this suite shares 2 cores with another)
    // halves its dial target, as documented: it then owes its reduced target
    // and the dialer never dials a peer connected already: with 29 peers and FAST's
    // revalidation (whose pings dial their own connections, kept busy), a node can be
    // connected to every peer it knows with fewer than 16 of them through a dialer
    const unconnected = (node: DiscoveryNode): number => node.services.discovery.nodes().filter(peer => node.getConnections(peer.id).length === 0).length
    const enough = (node: DiscoveryNode, peers: Set<string> | undefined): boolean => {
      const dialer = dialerOf(node)
      return (peers?.size ?? 0) >= 16 || unconnected(node) === 0 ||
        (dialer != null && dialer.stats.targetShrunk > 0 && dialer.dialedConnections().filter(c => c.status === 'open').length >= dialer.target)
    }
    await waitFor(() => {
      const peers = dialedPeers(network)
      return network.every(node => enough(node, peers.get(node.peerId.toString())))
    }, () => {
      const peers = dialedPeers(network)
      const short = network.filter(node => !enough(node, peers.get(node.peerId.toString())))
        .map(node => `${peers.get(node.peerId.toString())?.size ?? 0} peers (target ${dialerOf(node)?.target ?? '-'}, ${unconnected(node)} of ${node.services.discovery.size} table nodes unconnected)`)
      return `every node to have 16 dialed connections, or its reduced target; short: ${short.join(', ')}`
    }, 90_000)
    for (const node of network) {
      const own = dialerOf(node)?.dialedConnections() ?? []
      assert.ok(own.every(c => c.direction === 'outbound'), 'a dialed connection is outbound')
      assert.ok(own.length <= 16, `${own.length} dialed by one node, over its target`)
    }
  })

  it('fires libp2p\'s peer:discovery for discovered peers, never for the node itself', () => {
    for (const node of network) {
      const seen = discovered.get(node.peerId.toString())!
      assert.ok(seen.size >= 16, `${seen.size} peers discovered`)
      assert.ok(!seen.has(node.peerId.toString()))
    }
  })
})
