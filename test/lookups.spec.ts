import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { keyOf } from '../src/table/key.js'
import { seededRandom } from '../src/table/random.js'
import { TestNodes, waitFor } from './utils/libp2p.js'
import { startNetwork } from './utils/network.js'
import { fakePeerId } from './utils/peers.js'
import type { LookupNode } from '../src/lookup.js'
import type { NodeDB } from '../src/store/node-db.js'
import type { Table } from '../src/table/table.js'
import type { PeerId } from '@libp2p/interface'

interface Internals {
  table: Table
  db: NodeDB
  lookups: { findnode(node: LookupNode, target: Uint8Array, options: object): Promise<unknown> }
}

describe('findnode failure counting (geth Table.findnode)', function () {
  this.timeout(60_000)
  const nodes = new TestNodes()
  after(async () => { await nodes.stop() })

  it('drops a node after maxFindnodeFailures failed requests in a row, and resets the count on a good answer', async () => {
    const network = await startNetwork(nodes, 12, { autoDial: { enabled: false }, requestTimeout: 3000 })
    const node = network[3]!
    await waitFor(() => node.services.discovery.size >= 11, 'the table to hold the network', 20_000)
    const internals = node.services.discovery as unknown as Internals
    const table = internals.table

    // a dead node in the fullest bucket, so the bucket keeps ≥ bucketSize / 4 entries
    const fill = table.bucketFill()
    const fullest = fill.indexOf(Math.max(...fill))
    assert.ok((fill[fullest] ?? 0) >= 4, 'some bucket holds 4 nodes')
    const random = seededRandom(3)
    let dead: PeerId
    do {
      dead = fakePeerId(random)
    } while (table.bucketIndexOf(keyOf(dead)) !== fullest)
    const deadNode = { id: dead, key: keyOf(dead), multiaddrs: [multiaddr('/memory/nobody-listens-here')] }
    table.addFoundNode({ id: dead, multiaddrs: deadNode.multiaddrs })
    assert.ok(table.getNode(dead) != null)

    const target = random.bytes(32)
    for (let i = 1; i <= 5; i++) {
      await assert.rejects(internals.lookups.findnode(deadNode, target, {}))
      assert.equal(await internals.db.findFails(dead), i)
      assert.equal(table.getNode(dead) != null, i < 5, `in the table after ${i} failures: ${i < 5}`)
    }

    const live = network[5]!
    const liveNode = { id: live.peerId, key: keyOf(live.peerId), multiaddrs: live.getMultiaddrs() }
    await internals.db.recordFindnode(live.peerId, false)
    await internals.db.recordFindnode(live.peerId, false)
    await internals.lookups.findnode(liveNode, target, {})
    assert.equal(await internals.db.findFails(live.peerId), 0)
  })
})
