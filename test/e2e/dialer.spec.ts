import assert from 'node:assert/strict'
import { DIAL_TAG, DIAL_TAG_VALUE } from '../../src/constants.js'
import { kadDiscovery } from '../../src/index.js'
import { dialedPeers, dialerOf } from '../utils/dialed.js'
import { TestNodes, waitFor } from '../utils/libp2p.js'
import { FAST, startNetwork } from '../utils/network.js'
import type { DiscoveryNode } from '../utils/network.js'

/** A node's open outbound connections to peers it tagged as dialed in its peer store. */
async function taggedOutbound (node: DiscoveryNode): Promise<number> {
  let count = 0
  for (const connection of node.getConnections()) {
    if (connection.direction !== 'outbound' || connection.status !== 'open') {
      continue
    }
    const peer = await node.peerStore.get(connection.remotePeer).catch(() => undefined)
    if (peer?.tags.get(DIAL_TAG)?.value === DIAL_TAG_VALUE) {
      count++
    }
  }
  return count
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** Counts the lookups a node's service runs from now on (refreshes and random lookups alike). */
function countLookups (node: DiscoveryNode): { count: number } {
  const counter = { count: 0 }
  const service = node.services.discovery as unknown as { doLookup(...args: unknown[]): Promise<unknown> }
  const original = service.doLookup.bind(service)
  service.doLookup = async (...args: unknown[]) => {
    counter.count++
    return original(...args)
  }
  return counter
}

describe('the auto-dialer on real libp2p nodes', function () {
  this.timeout(180_000)
  const nodes = new TestNodes()

  afterEach(async () => { await nodes.stop() })

  it('gives every node of 12 its own 3 outbound dialed connections, tagged in the peer store', async () => {
    const network = await startNetwork(nodes, 12, { autoDial: { minConnections: 3 } })
    await waitFor(async () => (await Promise.all(network.map(taggedOutbound))).every(n => n >= 3),
      'every node to hold 3 tagged outbound connections', 90_000)
    for (const node of network) {
      const dialer = dialerOf(node)
      assert.ok(dialer != null)
      assert.ok(dialer.outbound >= 3 && dialer.outbound <= 3 + 4, `${dialer.outbound} dialed`)
      // it dialed each peer once (a peer that dials us at the very moment we dial it can
      // still leave a second connection: libp2p has no tie-break for crossed dials)
      const peers = dialer.dialedConnections().map(c => c.remotePeer.toString())
      assert.equal(new Set(peers).size, peers.length)
      assert.ok(dialer.dialedConnections().every(c => c.direction === 'outbound'))
    }
  })

  it('does not: the same network with the dialer disabled holds no dialed connection', async () => {
    const network = await startNetwork(nodes, 12, { autoDial: { enabled: false } })
    await waitFor(() => network.every(n => n.services.discovery.size >= 11), 'every table to fill', 90_000)
    // as long as the positive test may take to get there, at least a while
    await sleep(5000)
    assert.deepEqual(await Promise.all(network.map(taggedOutbound)), network.map(() => 0))
    assert.ok([...dialedPeers(network).values()].every(peers => peers.size === 0))
  })

  it('stops driving random lookups once a network smaller than its target is all connected', async () => {
    // 6 nodes: the target of 16 can never be met, every candidate is connected already
    const network = await startNetwork(nodes, 6, { refreshInterval: 30 * 60_000 })
    await waitFor(() => [...dialedPeers(network).values()].every(peers => peers.size === 5), 'every pair connected', 60_000)
    await sleep(10_000)
    const counters = network.map(countLookups)
    await sleep(30_000)
    const lookups = counters.map(c => c.count)
    // without the idle backoff a random lookup a second (≈ 30 in this window) on every node;
    // with it, the waits have doubled past 8 s by now: a few at most
    assert.ok(lookups.every(n => n <= 5), `lookups per node in 30 s: ${lookups.join(' ')}`)
  })

  it('dials its way back after every peer restarted', async () => {
    // only this node dials, so its own connections are what brings the network back
    const peers = await startNetwork(nodes, 4, { autoDial: { enabled: false } })
    const node: DiscoveryNode = await nodes.create({
      services: { discovery: kadDiscovery({ ...FAST, bootnodes: [peers[0]!.getMultiaddrs()[0]!], autoDial: { minConnections: 4, dialHistoryExpiration: 1000 } }) }
    })
    const dialer = dialerOf(node)!
    await waitFor(() => dialer.outbound === 4, 'the node to dial every peer', 60_000)
    await Promise.all(peers.map(async p => { await p.stop() }))
    await waitFor(() => node.getConnections().length === 0, 'every connection lost', 10_000)
    assert.equal(dialer.outbound, 0)
    assert.ok(dialer.stats.recoveries >= 1)
    // the first redials fail while the peers are down
    await sleep(3000)
    await Promise.all(peers.map(async p => { await p.start() }))
    await waitFor(() => dialer.outbound >= 3, 'the node to dial its peers again', 60_000)
  })
})
