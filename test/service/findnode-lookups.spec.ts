import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { PROTOCOL } from '../../src/constants.js'
import { kadDiscovery } from '../../src/index.js'
import { keyOf } from '../../src/table/key.js'
import { seededRandom } from '../../src/table/random.js'
import { TestNodes, waitFor } from '../utils/libp2p.js'
import { FAST, startNetwork } from '../utils/network.js'
import { fakePeerId } from '../utils/peers.js'
import type { KadDiscoveryInit } from '../../src/index.js'
import type { LookupNode } from '../../src/service/iterative-lookup.js'
import type { NodeDB } from '../../src/store/node-db.js'
import type { Table } from '../../src/table/table.js'
import type { DiscoveryNode } from '../utils/network.js'
import type { PeerId } from '@libp2p/interface'

interface Internals {
  table: Table
  db: NodeDB
  lookups: { findnode(node: LookupNode, target: Uint8Array, options: object): Promise<unknown>, drain(): Promise<void> }
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

    // a dead node in the fullest bucket, so the bucket keeps ≥ bucketSize / 4 entries;
    // the network's ids are random, and 11 peers leave no bucket at 4 about one run in
    // nine: heard-of nodes top it up (never asked, they only keep the bucket's count)
    const fill = table.bucketFill()
    const fullest = fill.indexOf(Math.max(...fill))
    const random = seededRandom(3)
    const inFullest = (): PeerId => {
      let id: PeerId
      do {
        id = fakePeerId(random)
      } while (table.bucketIndexOf(keyOf(id)) !== fullest)
      return id
    }
    for (let i = fill[fullest] ?? 0; i < 4; i++) {
      const filler = inFullest()
      table.addFoundNode({ id: filler, multiaddrs: [multiaddr(`/memory/filler-${i}`)] })
    }
    assert.ok((table.bucketFill()[fullest] ?? 0) >= 4, 'some bucket holds 4 nodes')
    const dead = inFullest()
    const deadNode = { id: dead, key: keyOf(dead), multiaddrs: [multiaddr('/memory/nobody-listens-here')] }
    table.addFoundNode({ id: dead, multiaddrs: deadNode.multiaddrs })
    assert.ok(table.getNode(dead) != null)

    const target = random.bytes(32)
    for (let i = 1; i <= 5; i++) {
      await assert.rejects(internals.lookups.findnode(deadNode, target, {}))
      await internals.lookups.drain()
      assert.equal(await internals.db.findFails(dead), i)
      assert.equal(table.getNode(dead) != null, i < 5, `in the table after ${i} failures: ${i < 5}`)
    }

    const live = network[5]!
    const liveNode = { id: live.peerId, key: keyOf(live.peerId), multiaddrs: live.getMultiaddrs() }
    await internals.db.recordFindnode(live.peerId, false)
    await internals.db.recordFindnode(live.peerId, false)
    await internals.lookups.findnode(liveNode, target, {})
    await internals.lookups.drain()
    assert.equal(await internals.db.findFails(live.peerId), 0)
  })
})

describe('only a peer\'s own failures are charged to it', function () {
  this.timeout(60_000)
  const nodes = new TestNodes()
  afterEach(async () => { await nodes.stop() })

  /** A discovery node and a peer that reads requests and never answers them. */
  async function silentPeer (requestTimeout: number, init: KadDiscoveryInit = {}): Promise<{ internals: Internals, silent: LookupNode, discovery: DiscoveryNode }> {
    const discovery = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, requestTimeout, autoDial: { enabled: false }, ...init }) } })
    const peer = await nodes.create()
    await peer.handle(PROTOCOL, async (stream) => {
      // hold the stream: no answer, no reset
      await new Promise(resolve => setTimeout(resolve, 10_000)).catch(() => {})
      stream.abort(new Error('done'))
    })
    const multiaddrs = peer.getMultiaddrs()
    return {
      internals: discovery.services.discovery as unknown as Internals,
      silent: { id: peer.peerId, key: keyOf(peer.peerId), multiaddrs },
      discovery
    }
  }

  it('charges a timeout while our event loop kept up', async () => {
    const { internals, silent } = await silentPeer(300)
    await assert.rejects(internals.lookups.findnode(silent, new Uint8Array(32), {}), { name: 'TimeoutError' })
    await internals.lookups.drain()
    assert.equal(await internals.db.findFails(silent.id), 1)
  })

  it('never charges a timeout while our own event loop was overloaded', async () => {
    const { internals, silent } = await silentPeer(300)
    const request = internals.lookups.findnode(silent, new Uint8Array(32), {})
    // the whole process busy past the deadline, as 200 nodes in one process make it
    const until = Date.now() + 600
    while (Date.now() < until) {
      // busy
    }
    await assert.rejects(request, { name: 'TimeoutError' })
    await internals.lookups.drain()
    assert.equal(await internals.db.findFails(silent.id), 0)
  })

  it('never charges a cancelled request, nor any request of an aborted lookup', async () => {
    const { internals, silent, discovery } = await silentPeer(5000)
    const controller = new AbortController()
    const request = internals.lookups.findnode(silent, new Uint8Array(32), { signal: controller.signal })
    setTimeout(() => { controller.abort() }, 100)
    await assert.rejects(request, { name: 'AbortError' })
    // a user's lookup, aborted while it waits on the silent node
    internals.table.addFoundNode({ id: silent.id, multiaddrs: silent.multiaddrs })
    const aborted = new AbortController()
    const lookup = discovery.services.discovery.lookup(silent.key, { signal: aborted.signal })
    setTimeout(() => { aborted.abort() }, 200)
    await assert.rejects(lookup, { name: 'AbortError' })
    await internals.lookups.drain()
    assert.equal(await internals.db.findFails(silent.id), 0)
  })

  it('ends a lookup after lookupTimeout with the nodes that answered, and never charges the requests it cancelled', async () => {
    const { internals, silent, discovery } = await silentPeer(5000, { lookupTimeout: 800 })
    const answering = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
    internals.table.addFoundNode({ id: silent.id, multiaddrs: silent.multiaddrs })
    internals.table.addFoundNode({ id: answering.peerId, multiaddrs: answering.getMultiaddrs() })
    const started = Date.now()
    const found = await discovery.services.discovery.lookup(silent.key)
    const elapsed = Date.now() - started
    assert.ok(elapsed >= 700 && elapsed < 3000, `ended by its budget, after ${elapsed} ms`)
    assert.deepEqual(found.map(p => p.id.toString()), [answering.peerId.toString()], 'the node that answered')
    await internals.lookups.drain()
    assert.equal(await internals.db.findFails(silent.id), 0, 'the cancelled request is not charged')
  })

  it('keeps a node that answered with an empty list: two nodes find each other', async () => {
    const a = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
    const b = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false }, bootnodes: [a.getMultiaddrs()[0]!.toString()] }) } })
    // a's table may hold only b, which never answers with itself: a's answer is empty
    const found = await b.services.discovery.lookup(a.peerId)
    assert.deepEqual(found.map(n => n.id.toString()), [a.peerId.toString()])
  })
})
