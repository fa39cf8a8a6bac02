import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { kadDiscovery } from '../../src/index.js'
import { KadDiscovery } from '../../src/service/discovery.js'
import { captureComponents, TestNodes, waitFor } from '../utils/libp2p.js'
import { FAST } from '../utils/network.js'
import type { KadDiscoveryInit } from '../../src/index.js'
import type { KadDiscoveryComponents } from '../../src/service/discovery.js'
import type { Libp2p } from '@libp2p/interface'

/** The service's private parts these tests look at or steer. */
interface Internals {
  load: { overloaded(): boolean }
  deferred: number
  refreshesCut: number
  controller: AbortController
  client: { stats: Record<string, number> }
  table: { addInboundNode(contact: unknown): unknown, getNode(id: unknown): unknown }
  now(): number
}

describe('KadDiscovery background work', function () {
  this.timeout(30_000)
  const nodes = new TestNodes()
  // BOUNDED: the services one test makes
  const services: KadDiscovery[] = []

  afterEach(async () => {
    await Promise.all(services.splice(0).map(async s => { await s.stop() }))
    await nodes.stop()
  })

  /** A service on a bare node whose only bootnode is `boot` (a discovery node). */
  async function serviceWith (boot: Libp2p, init: KadDiscoveryInit = {}): Promise<{ service: KadDiscovery, internals: Internals }> {
    const host = await nodes.create({ services: { capture: captureComponents() } })
    const service = new KadDiscovery(host.services.capture.components as unknown as KadDiscoveryComponents, {
      ...FAST,
      autoDial: { enabled: false },
      bootnodes: boot.getMultiaddrs(),
      ...init
    })
    services.push(service)
    return { service, internals: service as unknown as Internals }
  }

  async function bootnode (): Promise<Libp2p> {
    return nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
  }

  /** A started service whose load gauge reads `load.overloaded`, held so until the test says. */
  async function startHeld (): Promise<{ service: KadDiscovery, internals: Internals, load: { overloaded: boolean } }> {
    const { service, internals } = await serviceWith(await bootnode(), { bucketRefresh: false })
    const load = { overloaded: true }
    internals.load = { overloaded: () => load.overloaded }
    await service.start()
    await service.afterStart()
    return { service, internals, load }
  }

  describe('while our own event loop is overloaded', () => {
    it('puts off revalidation, and pings once the loop calms down', async () => {
      const { internals, load } = await startHeld()
      await waitFor(() => (internals.client.stats['received.NODES'] ?? 0) > 0, 'the self lookup\'s answer', 5000)
      // revalidateInterval is 200 ms: unloaded, a second holds several pings
      await new Promise(resolve => setTimeout(resolve, 1000))
      assert.equal(internals.client.stats['sent.PING'] ?? 0, 0)
      assert.ok(internals.deferred > 0, 'revalidation waited')
      load.overloaded = false
      await waitFor(() => (internals.client.stats['sent.PING'] ?? 0) > 0, 'a ping once calm', 5000)
    })

    it('puts off the refresh\'s random lookups after the self lookup, not the self lookup', async () => {
      const { service, internals, load } = await startHeld()
      await waitFor(() => (internals.client.stats['sent.FIND_NODE'] ?? 0) > 0, 'the self lookup', 5000)
      const afterSelf = internals.client.stats['sent.FIND_NODE'] ?? 0
      await new Promise(resolve => setTimeout(resolve, 1000))
      assert.equal(internals.client.stats['sent.FIND_NODE'] ?? 0, afterSelf, 'no random lookup while overloaded')
      load.overloaded = false
      await service.refresh()
      assert.ok((internals.client.stats['sent.FIND_NODE'] ?? 0) > afterSelf, 'the random lookups ran once calm')
    })

    it('drops the rest of a refresh after MAX_CALM_WAIT of overload; the next refresh runs its self lookup again', async () => {
      const boot = await bootnode()
      const { service, internals } = await serviceWith(boot, { bucketRefresh: false })
      internals.load = { overloaded: () => true }
      // each look at the clock moves it 50 s on: the 2 min wait is over after two rechecks
      let fake = Date.now()
      internals.now = () => { fake += 50_000; return fake }
      await service.start()
      await service.afterStart()
      await service.refresh()
      const selfLookup = internals.client.stats['sent.FIND_NODE'] ?? 0
      assert.ok(selfLookup > 0, 'the self lookup ran')
      assert.equal(internals.refreshesCut, 1)
      await service.refresh()
      assert.equal(internals.client.stats['sent.FIND_NODE'] ?? 0, selfLookup * 2, 'only self lookups, no random one')
    })
  })

  describe('initDone', () => {
    it('accepts nodes that contact it as soon as the self lookup is done, while the rest of the refresh runs', async () => {
      // the refresh's random lookups wait for calm: the refresh is held after its self lookup
      const { internals, load } = await startHeld()
      await waitFor(() => (internals.client.stats['received.NODES'] ?? 0) > 0, 'the self lookup\'s answer', 5000)
      await new Promise(resolve => setTimeout(resolve, 100))
      const caller = await bootnode()
      // a node that contacts us: an inbound contact (geth addInboundNode) is refused before initDone
      const result = internals.table.addInboundNode({ id: caller.peerId, multiaddrs: caller.getMultiaddrs() })
      assert.notEqual(internals.table.getNode(caller.peerId), undefined, `refused with ${String(result)}`)
      load.overloaded = false
    })
  })

  describe('signals', () => {
    it('leaves no listener on the service\'s signal once lookups and random reads are done', async () => {
      const boot = await bootnode()
      const { service, internals } = await serviceWith(boot)
      await service.start()
      await service.afterStart()
      await service.refresh()
      const before = getEventListeners(internals.controller.signal, 'abort').length
      const user = new AbortController()
      for (let i = 0; i < 20; i++) {
        await service.lookup(crypto.getRandomValues(new Uint8Array(32)), { signal: user.signal })
      }
      const stream = service.randomNodes({ signal: user.signal })
      await stream.next()
      await stream.return(undefined)
      // one per call would be 21 more: a wait or two of the service's own may have ended meanwhile
      assert.ok(getEventListeners(internals.controller.signal, 'abort').length <= before)
      assert.equal(getEventListeners(user.signal, 'abort').length, 0)
    })
  })
})
