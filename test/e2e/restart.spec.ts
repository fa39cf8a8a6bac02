import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { kadDiscovery } from '../../src/index.js'
import { tempLevelDatastore } from '../utils/datastore.js'
import { TestNodes, waitFor } from '../utils/libp2p.js'
import { FAST, startNetwork } from '../utils/network.js'
import type { TestDatastore } from '../utils/datastore.js'

describe('restart from the node database', function () {
  this.timeout(120_000)
  const nodes = new TestNodes()
  let store: TestDatastore | undefined

  afterEach(async () => {
    await nodes.stop()
    await store?.cleanup()
  })

  it('rejoins from its stored seeds alone when its bootnode is gone', async () => {
    const network = await startNetwork(nodes, 8, { autoDial: { enabled: false } })
    const bootnode = network[0]!
    store = await tempLevelDatastore()
    const privateKey = await generateKeyPair('Ed25519')
    const init = {
      ...FAST,
      seedMinTableTime: 300,
      copyNodesInterval: 200,
      autoDial: { enabled: false },
      datastore: store.datastore
    }
    const first = await nodes.create({
      privateKey,
      services: { discovery: kadDiscovery({ ...init, bootnodes: [bootnode.getMultiaddrs()[0]!] }) }
    })
    await waitFor(() => first.services.discovery.size >= 7, 'the table to hold the whole network', 20_000)
    // wait for a copy of live nodes: nodes must have passed a liveness check and sat in the
    // table for seedMinTableTime
    await waitFor(async () => first.services.discovery.buckets().flatMap(b => b.entries).filter(e => e.livenessChecks > 0).length >= 3,
      'some nodes to pass revalidation', 20_000)
    await new Promise(resolve => setTimeout(resolve, 1000))
    await first.stop()
    await bootnode.stop()

    // a process restart: the same folder in a new LevelDatastore, no bootnode at all
    const datastore = await store.reopen()
    const second = await nodes.create({
      privateKey,
      services: { discovery: kadDiscovery({ ...init, datastore }) }
    })
    const alive = network.slice(1).map(n => n.peerId.toString())
    const knownAlive = (): number => {
      const known = new Set(second.services.discovery.nodes().map(n => n.id.toString()))
      return alive.filter(id => known.has(id)).length
    }
    // its stored seeds are all it has: the bootnode is gone and none was given
    await waitFor(() => knownAlive() >= 6, 'the table to refill with live nodes from its seeds', 30_000)
    assert.ok(knownAlive() >= 6)
  })
})
