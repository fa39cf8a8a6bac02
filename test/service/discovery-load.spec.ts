import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { MAX_EARLY_CONTACTS, NEIGHBOUR_INTRO_INTERVAL, SELF_LOOKUP_REPEAT } from '../../src/constants.js'
import { kadDiscovery } from '../../src/index.js'
import { KadDiscovery } from '../../src/service/discovery.js'
import { keyOf, logDistance } from '../../src/table/key.js'
import { AddResult } from '../../src/table/types.js'
import { captureComponents, TestNodes, waitFor } from '../utils/libp2p.js'
import { FAST, startNetwork } from '../utils/network.js'
import type { KadDiscoveryInit } from '../../src/index.js'
import type { KadDiscoveryComponents } from '../../src/service/discovery.js'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'

/** The service's private parts these tests look at or steer. */
interface Internals {
  load: { overloaded(): boolean }
  deferred: number
  refreshesCut: number
  controller: AbortController
  client: { stats: Record<string, number>, findNode(...args: unknown[]): Promise<unknown> }
  table: { addInboundNode(contact: unknown): unknown, addFoundNode(info: unknown): unknown, getNode(id: unknown): unknown, delete(id: unknown): boolean, initDone: boolean }
  lookups: { introduceNext(options: { signal?: AbortSignal }): Promise<boolean> }
  now(): number
  contact(contact: unknown): void
  earlyContacts: Map<string, unknown>
  repeatSelfLookup(): Promise<void>
  selfLookup(): Promise<void>
  selfLookupDelay?: number
  scheduler: { deadlines: Map<string, number>, setDeadline(name: string, at: number): void }
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
  async function serviceWith (boot: Libp2p, init: KadDiscoveryInit = {}): Promise<{ service: KadDiscovery, internals: Internals, host: Libp2p }> {
    const host = await nodes.create({ services: { capture: captureComponents() } })
    const service = new KadDiscovery(host.services.capture.components as unknown as KadDiscoveryComponents, {
      ...FAST,
      autoDial: { enabled: false },
      bootnodes: boot.getMultiaddrs(),
      ...init
    })
    services.push(service)
    return { service, internals: service as unknown as Internals, host }
  }

  /** `serviceWith`, started and through its first refresh; `started` is read just before start(). */
  async function refreshedWith (boot: Libp2p, init: KadDiscoveryInit = {}): Promise<{ service: KadDiscovery, internals: Internals, host: Libp2p, started: number }> {
    const made = await serviceWith(boot, init)
    const started = Date.now()
    await made.service.start()
    await made.service.afterStart()
    await made.service.refresh()
    return { ...made, started }
  }

  function tableSize (node: Libp2p): number {
    return (node.services.discovery as { size: number }).size
  }

  async function bootnode (): Promise<Libp2p> {
    return nodes.create({ services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
  }

  /**
   * A started service whose load gauge reads `load.overloaded`, held so until the test
   * says. Its buckets hold one node each, so that the bootnode alone makes a full table:
   * a sparse one runs its refresh without waiting for calm.
   */
  async function startHeld (): Promise<{ service: KadDiscovery, internals: Internals, load: { overloaded: boolean } }> {
    const { service, internals } = await serviceWith(await bootnode(), { bucketRefresh: false, bucketSize: 1 })
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

    it('asks one node at a time in a background lookup, and alpha at a time in a user\'s lookup', async () => {
      const network = await startNetwork(nodes, 8, { autoDial: { enabled: false } })
      await waitFor(() => tableSize(network[0]!) >= 7, 'the bootnode to know the network', 10_000)
      const { service, internals } = await serviceWith(network[0]!, { bucketRefresh: false })
      const load = { overloaded: false }
      internals.load = { overloaded: () => load.overloaded }
      await service.start()
      await service.afterStart()
      await service.refresh()
      let inFlight = 0
      let most = 0
      const findNode = internals.client.findNode.bind(internals.client)
      internals.client.findNode = async (...args: unknown[]) => {
        inFlight++
        most = Math.max(most, inFlight)
        try {
          return await findNode(...args)
        } finally {
          inFlight--
        }
      }
      load.overloaded = true
      const before = internals.client.stats['sent.FIND_NODE'] ?? 0
      await internals.selfLookup()
      assert.ok((internals.client.stats['sent.FIND_NODE'] ?? 0) - before >= 3, 'the self lookup asked several nodes')
      assert.equal(most, 1, 'one at a time')
      most = 0
      await service.lookup(new Uint8Array(32).fill(7))
      assert.equal(most, 3, 'a user\'s lookup keeps alpha')
      load.overloaded = false
      most = 0
      await internals.selfLookup()
      assert.equal(most, 3, 'alpha again once calm')
    })

    it('drops the rest of a refresh after MAX_CALM_WAIT of overload; the next refresh runs its self lookup again', async () => {
      const boot = await bootnode()
      const { service, internals } = await serviceWith(boot, { bucketRefresh: false, bucketSize: 1 })
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

    it('runs a sparse table\'s refresh lookups at once: fewer than bucketSize nodes is a node still joining', async () => {
      // in a saturated process such a node would otherwise wait out MAX_CALM_WAIT and drop
      // the lookups that find the far half of the network, refresh after refresh
      const { service, internals } = await serviceWith(await bootnode(), { bucketRefresh: false })
      internals.load = { overloaded: () => true }
      await service.start()
      await service.afterStart()
      await service.refresh({ signal: AbortSignal.timeout(10_000) })
      assert.equal(internals.refreshesCut, 0)
      // the self lookup and three random lookups, each asking the bootnode
      assert.ok((internals.client.stats['sent.FIND_NODE'] ?? 0) >= 4, `${internals.client.stats['sent.FIND_NODE'] ?? 0} FIND_NODEs`)
    })
  })

  describe('a lookup from an empty table (geth refreshIfEmpty)', () => {
    it('waits for the seeds and self lookup of a refresh, not for its lookups held by the load', async () => {
      const { service, internals, load } = await startHeld()
      await waitFor(() => (internals.client.stats['received.NODES'] ?? 0) > 0, 'the self lookup\'s answer', 5000)
      await new Promise(resolve => setTimeout(resolve, 100))
      // the refresh is held after its self lookup; meanwhile the table empties
      for (const node of service.nodes()) {
        internals.table.delete(node.id)
      }
      assert.equal(service.size, 0)
      const found = await service.lookup(crypto.getRandomValues(new Uint8Array(32)), { signal: AbortSignal.timeout(10_000) })
      assert.ok(found.length > 0, 'the seeds were taken again and asked')
      assert.ok(service.size > 0)
      load.overloaded = false
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
      // taken into its bucket, or (buckets of one here) into the bucket's replacements
      assert.ok(result === AddResult.Added || result === AddResult.Replacement, `refused with ${String(result)}`)
      load.overloaded = false
    })
  })

  describe('contacts before initDone', () => {
    it('keeps a node that contacted it before initDone and adds it once the self lookup is done', async () => {
      const { service, internals } = await serviceWith(await bootnode(), { bucketRefresh: false })
      await service.start()
      const caller = await bootnode()
      internals.contact({ id: caller.peerId, multiaddrs: caller.getMultiaddrs() })
      assert.equal(internals.table.initDone, false)
      assert.equal(internals.table.getNode(caller.peerId), undefined, 'turned away before initDone (geth)')
      await service.afterStart()
      await service.refresh()
      assert.notEqual(internals.table.getNode(caller.peerId), undefined, 'added once initDone was set')
      assert.equal(internals.earlyContacts.size, 0)
    })

    it('keeps at most MAX_EARLY_CONTACTS, the newest', async () => {
      const { service, internals } = await serviceWith(await bootnode())
      await service.start()
      const callers = await Promise.all(Array.from({ length: MAX_EARLY_CONTACTS + 2 }, async () => bootnode()))
      for (const caller of callers) {
        internals.contact({ id: caller.peerId, multiaddrs: caller.getMultiaddrs() })
      }
      assert.equal(internals.earlyContacts.size, MAX_EARLY_CONTACTS)
      assert.equal(internals.earlyContacts.has(callers[0]?.peerId.toString() ?? ''), false, 'the oldest went first')
      assert.equal(internals.earlyContacts.has(callers.at(-1)?.peerId.toString() ?? ''), true)
    })
  })

  describe('repeated self lookups', () => {
    /**
     * A key pair whose node is at a smaller log distance from `self` than every one of
     * `others`: closer, and in a bucket of its own, so a full bucket (bucketSize 2) never
     * sends it to the replacements instead of the table.
     */
    async function closerThan (self: PeerId, others: PeerId[]): Promise<PrivateKey> {
      const nearest = Math.min(...others.map(other => logDistance(keyOf(self), keyOf(other))))
      for (let i = 0; i < 10_000; i++) {
        const key = await generateKeyPair('Ed25519')
        if (logDistance(keyOf(self), keyOf(peerIdFromPrivateKey(key))) < nearest) {
          return key
        }
      }
      throw new Error('no key in a closer bucket than the others in 10 000 tries')
    }

    it('looks itself up again about SELF_LOOKUP_REPEAT after start when it heard of a closer neighbour, twice as late while it finds new ones, and stops when it finds none', async () => {
      const boot = await bootnode()
      // bucketSize 2: the table is "full enough" (≥ bucketSize nodes) from two nodes on
      const { internals, host, started } = await refreshedWith(boot, { bucketRefresh: false, bucketSize: 2 })
      const self = host.peerId
      // introductions would send FIND_NODEs of their own to these few nodes
      internals.scheduler.setDeadline('introduce', Number.POSITIVE_INFINITY)
      const first = internals.scheduler.deadlines.get('selfLookup') ?? 0
      assert.ok(first >= started + SELF_LOOKUP_REPEAT / 2 && first <= Date.now() + SELF_LOOKUP_REPEAT * 1.5, 'first repeat about SELF_LOOKUP_REPEAT after start')
      const sent = (): number => internals.client.stats['sent.FIND_NODE'] ?? 0
      let before = sent()
      await internals.repeatSelfLookup()
      assert.equal(sent(), before, 'nothing heard of since the last self lookup: no lookup')
      assert.equal(internals.selfLookupDelay, 2 * SELF_LOOKUP_REPEAT, 'but it looks again, twice as late')
      // we hear of a newcomer (a contact), and it knows a node closer to us that we do not
      const late = await bootnode()
      const later = await nodes.create({ privateKey: await closerThan(self, [boot.peerId, late.peerId]), services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false }, bootnodes: late.getMultiaddrs() }) } })
      await waitFor(() => tableSize(late) > 0, 'the newcomer learns its own newcomer', 5000)
      internals.table.addInboundNode({ id: late.peerId, multiaddrs: late.getMultiaddrs() })
      before = sent()
      await internals.repeatSelfLookup()
      assert.ok(sent() > before, 'it looked itself up')
      assert.notEqual(internals.table.getNode(later.peerId), undefined, 'it found the node only the newcomer knew')
      assert.equal(internals.selfLookupDelay, 4 * SELF_LOOKUP_REPEAT, 'a new neighbour found: the next repeat is twice as late')
      // a closer contact that knows nobody new: the lookup runs, finds nothing, and the repeats end
      const lonely = await nodes.create({ privateKey: await closerThan(self, [boot.peerId, late.peerId, later.peerId]), services: { discovery: kadDiscovery({ ...FAST, autoDial: { enabled: false } }) } })
      internals.table.addInboundNode({ id: lonely.peerId, multiaddrs: lonely.getMultiaddrs() })
      before = sent()
      await internals.repeatSelfLookup()
      assert.ok(sent() > before, 'it looked itself up')
      assert.equal(internals.selfLookupDelay, undefined, 'nothing new found: no more repeats')
    })

    it('does not look itself up again while its table holds fewer than bucketSize nodes', async () => {
      const { internals } = await refreshedWith(await bootnode(), { bucketRefresh: false })
      const contact = await bootnode()
      internals.table.addInboundNode({ id: contact.peerId, multiaddrs: contact.getMultiaddrs() })
      const before = internals.client.stats['sent.FIND_NODE'] ?? 0
      await internals.repeatSelfLookup()
      assert.equal(internals.client.stats['sent.FIND_NODE'] ?? 0, before)
      assert.equal(internals.selfLookupDelay, 2 * SELF_LOOKUP_REPEAT)
    })
  })

  describe('neighbour introductions', () => {
    it('run every NEIGHBOUR_INTRO_INTERVAL, and tell a neighbour heard of from others about us once, after which it holds us', async () => {
      const boot = await bootnode()
      // bucketSize 2: two nodes are a table "full enough" to introduce itself
      const { internals, host, started } = await refreshedWith(boot, { bucketRefresh: false, bucketSize: 2 })
      const due = internals.scheduler.deadlines.get('introduce') ?? 0
      assert.ok(due >= started + NEIGHBOUR_INTRO_INTERVAL && due <= Date.now() + NEIGHBOUR_INTRO_INTERVAL, 'the first introduction is NEIGHBOUR_INTRO_INTERVAL after start')
      // a neighbour we only heard of: it never heard of us
      const heard = await bootnode()
      internals.table.addFoundNode({ id: heard.peerId, multiaddrs: heard.getMultiaddrs() })
      const sent = (): number => internals.client.stats['sent.FIND_NODE'] ?? 0
      const before = sent()
      assert.equal(await internals.lookups.introduceNext({}), true)
      assert.equal(sent(), before + 1, 'one request')
      const heardService = heard.services.discovery as KadDiscovery
      await waitFor(() => heardService.nodes().some(n => n.id.equals(host.peerId)), 'the neighbour to hold us', 5000)
      // the bootnode was asked by the self lookup: nobody is left to tell
      assert.equal(await internals.lookups.introduceNext({}), false)
      assert.equal(sent(), before + 1, 'no further request')
    })

    it('sends nothing while the table holds fewer than bucketSize nodes', async () => {
      const { internals } = await refreshedWith(await bootnode(), { bucketRefresh: false })
      const heard = await bootnode()
      internals.table.addFoundNode({ id: heard.peerId, multiaddrs: heard.getMultiaddrs() })
      const before = internals.client.stats['sent.FIND_NODE'] ?? 0
      assert.equal(await internals.lookups.introduceNext({}), false)
      assert.equal(internals.client.stats['sent.FIND_NODE'] ?? 0, before)
    })
  })

  describe('signals', () => {
    it('leaves no listener on the service\'s signal once lookups and random reads are done', async () => {
      const boot = await bootnode()
      const { service, internals } = await refreshedWith(boot)
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
