import assert from 'node:assert/strict'
import { TestNodes, waitFor } from '../utils/libp2p.js'
import { accuracy, startNetwork } from '../utils/network.js'

describe('over TCP on 127.0.0.1', function () {
  this.timeout(60_000)
  const nodes = new TestNodes()
  after(async () => { await nodes.stop() })

  it('joins, fills tables, connects and looks up', async () => {
    const network = await startNetwork(nodes, 6, { autoDial: { minConnections: 5 } }, { transport: 'tcp', encryption: 'noise' })
    for (const node of network) {
      assert.ok(node.getMultiaddrs().every(ma => ma.toString().startsWith('/ip4/127.0.0.1/tcp/')))
    }
    await waitFor(() => network.every(n => n.services.discovery.size >= 5), 'every table to hold the other 5', 30_000)
    await waitFor(() => network.every(n => new Set(n.getConnections().map(c => c.remotePeer.toString())).size >= 5),
      'every node to connect to the other 5', 30_000)
    const source = network[3]!
    const target = crypto.getRandomValues(new Uint8Array(32))
    const found = await source.services.discovery.lookup(target)
    assert.equal(accuracy(found, network.filter(n => !n.peerId.equals(source.peerId)), target, 5), 1)
    // addresses learned over TCP are loopback TCP addresses
    for (const peer of source.services.discovery.nodes()) {
      assert.ok(peer.multiaddrs.some(ma => ma.toString().startsWith('/ip4/127.0.0.1/tcp/')))
    }
  })
})
