import assert from 'node:assert/strict'
import { setTimeout as delay } from 'node:timers/promises'
import { identify } from '@libp2p/identify'
import { AbortError, isPeerId } from '@libp2p/interface'
import { memory } from '@libp2p/memory'
import { plaintext } from '@libp2p/plaintext'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { kadDiscovery } from '../../src/index.js'
import { KadDiscovery } from '../../src/service/discovery.js'
import { seededRandom } from '../../src/table/random.js'
import { captureComponents, memoryAddress, TestNodes, waitFor } from '../utils/libp2p.js'
import { FAST } from '../utils/network.js'
import { fakePeerId, tcpAddr } from '../utils/peers.js'
import type { KadDiscoveryInit, KadDiscovery as KadDiscoveryService } from '../../src/index.js'
import type { KadDiscoveryComponents } from '../../src/service/discovery.js'
import type { Libp2p, PeerId, PeerInfo } from '@libp2p/interface'

describe('KadDiscovery', function () {
  this.timeout(30_000)
  const nodes = new TestNodes()
  // BOUNDED: the services one test makes
  const services: KadDiscovery[] = []

  // BOUNDED: the nodes one test makes by hand
  const stopLater: Libp2p[] = []

  afterEach(async () => {
    await Promise.all(services.splice(0).map(async s => { await s.stop() }))
    await Promise.all(stopLater.splice(0).map(async n => { await n.stop() }))
    await nodes.stop()
  })

  /** A bootnode running the service, and a bare node whose components a test service uses. */
  async function setup (init: KadDiscoveryInit = {}): Promise<{ service: KadDiscovery, bootnode: PeerInfo, components: KadDiscoveryComponents }> {
    const boot = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
    const host = await nodes.create({ services: { capture: captureComponents() } })
    const bootnode = { id: boot.peerId, multiaddrs: boot.getMultiaddrs() }
    const components = host.services.capture.components as unknown as KadDiscoveryComponents
    const service = new KadDiscovery(components, {
      ...FAST,
      autoDial: { enabled: false },
      bootnodes: boot.getMultiaddrs(),
      ...init
    })
    services.push(service)
    return { service, bootnode, components }
  }

  describe('peer-discovery compliance', () => {
    it('can start the service', async () => {
      const { service } = await setup()
      await service.start()
      await service.afterStart()
      assert.equal(service.isStarted(), true)
    })

    it('can start and stop the service', async () => {
      const { service } = await setup()
      await service.start()
      await service.afterStart()
      await service.stop()
      assert.equal(service.isStarted(), false)
    })

    it('does not fail to stop the service if it was not started', async () => {
      const { service } = await setup()
      await service.stop()
    })

    it('does not fail to start the service if it is already started', async () => {
      const { service } = await setup()
      await service.start()
      await service.start()
      await service.afterStart()
      assert.equal(service.isStarted(), true)
    })

    it('emits a peer event after start, with a valid peer id and multiaddrs', async () => {
      const { service, bootnode } = await setup()
      const event = new Promise<PeerInfo>(resolve => {
        service.addEventListener('peer', evt => { resolve(evt.detail) }, { once: true })
      })
      await service.start()
      await service.afterStart()
      const peer = await event
      assert.ok(isPeerId(peer.id))
      assert.ok(peer.id.equals(bootnode.id))
      assert.ok(peer.multiaddrs.length > 0)
    })

    it('emits no peer event before start, though a node enters its table, and does after start', async () => {
      const { service, bootnode, components } = await setup()
      const events: PeerInfo[] = []
      service.addEventListener('peer', evt => { events.push(evt.detail) })
      // a node enters the table before start, as a seed or a contact would: the announcer
      // merges it into the peer store, and only a started service may emit it
      const early = { id: fakePeerId(seededRandom(15)), multiaddrs: [tcpAddr('203.0.113.15')] }
      const internals = service as unknown as { table: { addFoundNode(node: PeerInfo): unknown } }
      internals.table.addFoundNode(early)
      await waitFor(async () => components.peerStore.has(early.id), 'the early node in the peer store')
      await delay(50)
      assert.equal(events.length, 0, 'no event before start')
      await service.start()
      await service.afterStart()
      await waitFor(() => events.some(e => e.id.equals(bootnode.id)), 'the bootnode\'s peer event after start')
    })

    it('emits no peer event after stop', async () => {
      const { service } = await setup()
      await service.start()
      await service.afterStart()
      await service.stop()
      let events = 0
      service.addEventListener('peer', () => { events++ })
      await delay(500)
      assert.equal(events, 0)
    })
  })

  describe('lifecycle', () => {
    it('declares what libp2p needs to know of it', async () => {
      const { service } = await setup()
      assert.equal(service[Symbol.toStringTag], '@libp2p/kad-discovery')
      const asService = service as unknown as Record<symbol, unknown>
      const symbols = Object.getOwnPropertySymbols(service).map(s => s.description)
      assert.ok(symbols.includes('@libp2p/peer-discovery'))
      assert.ok(symbols.some(s => s?.includes('service-capabilities') ?? false))
      for (const symbol of Object.getOwnPropertySymbols(service)) {
        if (symbol.description?.includes('service-dependencies') ?? false) {
          assert.deepEqual(asService[symbol], ['@libp2p/identify'])
        }
      }
    })

    it('starts, stops and starts again, finding its bootnode each time', async () => {
      const { service, bootnode } = await setup()
      for (let round = 0; round < 2; round++) {
        await service.start()
        await service.afterStart()
        await service.refresh()
        assert.ok(service.nodes().some(n => n.id.equals(bootnode.id)), `round ${round}`)
        await service.stop()
      }
    })

    it('leaves no timer, request or pending task behind when stopped', async () => {
      const { service } = await setup()
      await service.start()
      await service.afterStart()
      const stopping = service.stop()
      await stopping
      const internals = service as unknown as { scheduler: { armed: boolean, running: Map<string, unknown> }, refreshing?: unknown }
      assert.equal(internals.scheduler.armed, false, 'no timer armed')
      assert.equal(internals.scheduler.running.size, 0, 'no task running')
      assert.equal(internals.refreshing, undefined, 'no refresh pending')
    })

    it('makes refresh() callers wait for the running refresh instead of starting another', async () => {
      const { service } = await setup()
      await service.start()
      await service.afterStart()
      // the first refresh (afterStart's) is over: the next call starts one, the others join it
      await service.refresh()
      let refreshes = 0
      let finished = false
      let release = (): void => {}
      const gate = new Promise<void>(resolve => { release = resolve })
      const internals = service as unknown as { doRefresh(): Promise<void> }
      const original = internals.doRefresh.bind(service)
      internals.doRefresh = async () => {
        refreshes++
        await gate
        await original()
        finished = true
      }
      const returned: boolean[] = []
      const callers = [1, 2, 3].map(async () => {
        await service.refresh()
        returned.push(finished)
      })
      try {
        await delay(100)
        assert.equal(returned.length, 0, 'no caller returns while the refresh is held')
        assert.equal(refreshes, 1, 'one refresh runs for three callers')
      } finally {
        release()
      }
      await Promise.all(callers)
      assert.equal(refreshes, 1, 'no caller started another')
      assert.deepEqual(returned, [true, true, true], 'every caller returned after the refresh finished')
    })

    it('rejects calls before start with NotStartedError and bad arguments with InvalidParametersError', async () => {
      const { service } = await setup()
      await assert.rejects(service.lookup(new Uint8Array(32)), { name: 'NotStartedError' })
      await service.start()
      await service.afterStart()
      await assert.rejects(service.lookup(new Uint8Array(31)), { name: 'InvalidParametersError' })
      assert.throws(() => service.readRandomNodes(-1), { name: 'InvalidParametersError' })
    })

    it('throws InvalidParametersError for a bad init when the factory is called', () => {
      assert.throws(() => kadDiscovery({ bucketSize: 0 }), { name: 'InvalidParametersError' })
      assert.throws(() => kadDiscovery({ bootnodes: ['/ip4/1.2.3.4/tcp/1'] }), { name: 'InvalidParametersError' })
    })
  })

  describe('revalidation (geth doRevalidate)', () => {
    /** What these tests look at of a's service, or steer. */
    interface Revalidating {
      table: { addFoundNode(node: PeerInfo): unknown, getNode(id: PeerId): { livenessChecks: number } | undefined }
      client: { stats: Record<string, number>, ping(peer: PeerInfo, options: unknown): Promise<unknown> }
      doRevalidate(): Promise<void>
    }

    /**
     * Two discovery nodes whose revalidation runs only when a test calls it; a's service.
     * Unless a test says otherwise, an entry that passed a check may be checked at once again.
     */
    async function pair (provenRevalidateInterval = 1): Promise<{ a: Libp2p, b: Libp2p, discovery: Revalidating }> {
      const init = { ...FAST, autoDial: { enabled: false }, revalidateInterval: 600_000, provenRevalidateInterval }
      const a = await nodes.create({ services: { discovery: kadDiscovery(init) } })
      const b = await nodes.create({ services: { discovery: kadDiscovery(init) } })
      return { a, b, discovery: a.services.discovery as unknown as Revalidating }
    }

    it('checks a new entry at its own addresses, then keeps it live over any open connection', async () => {
      const { a, b, discovery } = await pair()
      // b holds a connection to a, as a peer in use does; a heard of b at b's real address
      await b.dial(a.getMultiaddrs()[0]!)
      discovery.table.addFoundNode({ id: b.peerId, multiaddrs: b.getMultiaddrs().map(ma => ma.decapsulateCode(421)) })
      await discovery.doRevalidate()
      assert.equal(discovery.table.getNode(b.peerId)?.livenessChecks, 1)
      assert.equal(discovery.client.stats.connectionsOpened, 1, 'the first check dialed b at its address')
      await Promise.all(a.getConnections(b.peerId).filter(c => c.direction === 'outbound').map(async c => { await c.close() }))
      await discovery.doRevalidate()
      assert.equal(discovery.table.getNode(b.peerId)?.livenessChecks, 2)
      assert.equal(discovery.client.stats.connectionsOpened, 1, 'the next check took b\'s own connection')
    })

    it('checks an entry that passed a check again only once per provenRevalidateInterval', async () => {
      const { b, discovery } = await pair(600_000)
      discovery.table.addFoundNode({ id: b.peerId, multiaddrs: b.getMultiaddrs() })
      await discovery.doRevalidate()
      assert.equal(discovery.table.getNode(b.peerId)?.livenessChecks, 1, 'a new entry is checked on the first tick')
      await discovery.doRevalidate()
      await discovery.doRevalidate()
      assert.equal(discovery.client.stats['sent.PING'], 1, 'a checked one waits for provenRevalidateInterval')
      assert.equal(discovery.table.getNode(b.peerId)?.livenessChecks, 1)
    })

    it('takes an entry whose addresses an answer reached out of the fast lane, and no other', async () => {
      const { a, b, discovery } = await pair(600_000)
      const c = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
      const service = a.services.discovery as unknown as KadDiscoveryService
      // c holds a connection to a, so a's request goes over it: it proves nothing of c's address
      await c.dial(a.getMultiaddrs()[0]!)
      for (const peer of [b, c]) {
        discovery.table.addFoundNode({ id: peer.peerId, multiaddrs: peer.getMultiaddrs() })
      }
      await service.lookup(b.peerId)
      assert.ok((discovery.client.stats['sent.FIND_NODE'] ?? 0) >= 2, 'both were asked')
      for (let i = 0; i < 3; i++) {
        await discovery.doRevalidate()
      }
      assert.equal(discovery.table.getNode(b.peerId)?.livenessChecks, 0, 'b answered over the connection a dialed to it: no ping')
      assert.equal(discovery.client.stats['sent.PING'] ?? 0, discovery.table.getNode(c.peerId)?.livenessChecks, 'every ping went to c')
    })

    it('charges only the peer\'s own failure: a cancelled ping leaves the entry, a refused one removes it', async () => {
      const { b, discovery } = await pair()
      discovery.table.addFoundNode({ id: b.peerId, multiaddrs: b.getMultiaddrs() })
      discovery.client.ping = async () => { throw new AbortError('cancelled') }
      await discovery.doRevalidate()
      assert.equal(discovery.table.getNode(b.peerId)?.livenessChecks, 0, 'a cancelled ping says nothing of the peer')
      discovery.client.ping = async () => { throw new Error('connection refused') }
      await discovery.doRevalidate()
      assert.equal(discovery.table.getNode(b.peerId), undefined, 'a refused ping is the peer\'s own failure')
    })
  })

  describe('inside libp2p', () => {
    it('works listed under peerDiscovery, and libp2p fires peer:discovery', async () => {
      const boot = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
      const joined = await createLibp2p({
        addresses: { listen: [memoryAddress()] },
        transports: [memory()],
        connectionEncrypters: [plaintext()],
        streamMuxers: [yamux()],
        services: { identify: identify() },
        peerDiscovery: [kadDiscovery({ ...FAST, bootnodes: [boot.getMultiaddrs()[0]!] })]
      })
      stopLater.push(joined)
      const discovered = new Set<string>()
      joined.addEventListener('peer:discovery', evt => { discovered.add(evt.detail.id.toString()) })
      await waitFor(() => discovered.has(boot.peerId.toString()), 'peer:discovery of the bootnode', 10_000)
    })

    it('finds peers as a service and exposes the public API', async () => {
      const boot = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
      const others = await nodes.createMany(4, { services: { discovery: kadDiscovery({ ...FAST, bootnodes: [boot.getMultiaddrs()[0]!] }) } })
      const node = others[0]!
      const discovery: KadDiscoveryService = node.services.discovery
      await waitFor(() => discovery.size >= 4, 'the table to hold every other node', 15_000)
      assert.equal(discovery.nodes().length, discovery.size)
      assert.equal(discovery.buckets().length, 17)
      assert.equal(discovery.readRandomNodes(2).length, 2)
      const found = await discovery.lookup(boot.peerId)
      assert.ok(found[0]!.id.equals(boot.peerId), 'a lookup of a node\'s id finds it first')
      const controller = new AbortController()
      const seen: string[] = []
      for await (const peer of discovery.randomNodes({ signal: controller.signal })) {
        seen.push(peer.id.toString())
        if (seen.length === 3) {
          controller.abort()
          break
        }
      }
      assert.equal(new Set(seen).size, 3)
    })

    it('reloads its seeds and bootnodes when its table empties, instead of staying alone', async () => {
      const boot = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
      const node = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false }, bootnodes: [boot.getMultiaddrs()[0]!] }) } })
      await node.services.discovery.refresh()
      // everyone it knew turned it away: the table is empty
      const table = (node.services.discovery as unknown as { table: { delete(id: PeerId): boolean } }).table
      for (const peer of node.services.discovery.nodes()) {
        table.delete(peer.id)
      }
      assert.equal(node.services.discovery.size, 0)
      const stream = node.services.discovery.randomNodes()
      const first = await stream.next()
      await stream.return(undefined)
      assert.ok(first.value?.id.equals(boot.peerId))
      assert.ok(node.services.discovery.size >= 1)
    })

    it('announces a bootnode once, though its configured address carries /p2p/', async () => {
      const boot = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
      const { service } = {
        service: new KadDiscovery((await nodes.create({ services: { capture: captureComponents() } })).services.capture.components as unknown as KadDiscoveryComponents, {
          ...FAST, autoDial: { enabled: false }, bootnodes: [boot.getMultiaddrs()[0]!]
        })
      }
      services.push(service)
      let events = 0
      service.addEventListener('peer', evt => {
        if (evt.detail.id.equals(boot.peerId)) {
          events++
        }
      })
      await service.start()
      await service.afterStart()
      await service.refresh()
      await delay(300)
      assert.equal(events, 1)
      assert.ok(service.nodes().every(n => n.multiaddrs.every(ma => !ma.toString().includes('/p2p/'))))
    })

    it('ends randomNodes() quietly when the service stops', async () => {
      const boot = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
      const node = await nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false }, bootnodes: [boot.getMultiaddrs()[0]!] }) } })
      const stream = node.services.discovery.randomNodes()
      const first = await stream.next()
      assert.equal(first.done, false)
      await node.stop()
      // the table's nodes may still be yielded until the stream notices; it ends within a few
      let ended = false
      for (let i = 0; i < 50 && !ended; i++) {
        ended = (await stream.next()).done === true
      }
      assert.equal(ended, true)
    })
  })
})
