import assert from 'node:assert/strict'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { PROTOCOL } from '../../src/constants.js'
import { Message } from '../../src/protocol/pb/message.js'
import { ProtocolServer } from '../../src/protocol/server.js'
import { seededRandom } from '../../src/table/random.js'
import { captureComponents, peerInfoOf, waitFor } from '../utils/libp2p.js'
import { fakePeerId } from '../utils/peers.js'
import { protocolService, useNodes } from './utils.js'
import type { ProtocolService, ProtocolServiceInit } from './utils.js'
import type { ComponentsCapture, TestNode } from '../utils/libp2p.js'

interface Services extends Record<string, unknown> { discovery: ProtocolService }

const target = new Uint8Array(32).fill(9)

describe('ProtocolServer', () => {
  const nodes = useNodes()

  async function node (init: ProtocolServiceInit = {}, transport: 'memory' | 'tcp' = 'memory'): Promise<TestNode<Services>> {
    return nodes.create<Services>({ transport, services: { discovery: protocolService(init) } })
  }

  /** Asks `server` for `target` by hand and returns the raw answer. */
  async function ask (from: TestNode<Services>, server: TestNode<Services>): Promise<Message> {
    const stream = await from.dialProtocol(server.getMultiaddrs(), PROTOCOL)
    const pb = pbStream(stream)
    await pb.write({ type: Message.Type.FIND_NODE, target, peers: [] }, Message)
    const answer = await pb.read(Message)
    await stream.close()
    return answer
  }

  describe('FIND_NODE', () => {
    it("answers with the table's closest nodes, live ones first, at most bucketSize", async () => {
      const b = await node()
      const a = await node()
      const table = b.services.discovery.table
      const random = seededRandom(11)
      for (let i = 0; i < 60; i++) {
        table.addFoundNode({ id: fakePeerId(random), multiaddrs: [multiaddr(`/ip4/51.15.${i}.1/tcp/4001`)] })
      }
      // the three farthest nodes pass a liveness check: preferred over closer unchecked ones
      const byDistance = table.closest(target, table.size)
      assert(byDistance.length > 19)
      const live = byDistance.slice(-3)
      for (const n of live) {
        table.revalidated(n, true)
      }
      const expected = table.closest(target, 16, { preferLive: true }).map(n => n.id.toString())
      const found = await a.services.discovery.client.findNode(peerInfoOf(b), target)
      assert.deepEqual(found.map(p => p.id.toString()), expected)
      for (const n of live) {
        assert(expected.includes(n.id.toString()), 'a live node is in the answer')
      }
    })

    it('never tells a public requester loopback, LAN, unspecified or special addresses', async () => {
      const b = await node()
      const a = await node()
      const random = seededRandom(12)
      const table = b.services.discovery.table
      const mixed = fakePeerId(random)
      const lanOnly = fakePeerId(random)
      table.addFoundNode({ id: mixed, multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/1'), multiaddr('/ip4/51.15.0.7/tcp/1'), multiaddr('/ip4/0.0.0.0/tcp/1')] })
      table.addFoundNode({ id: lanOnly, multiaddrs: [multiaddr('/ip4/192.168.0.7/tcp/1'), multiaddr('/ip6/fe80::1/tcp/1')] })
      table.addFoundNode({ id: fakePeerId(random), multiaddrs: [multiaddr('/ip4/198.51.100.1/tcp/1')] })
      // a memory-transport requester has no IP and counts as public
      const answer = await ask(a, b)
      assert.equal(answer.type, Message.Type.NODES)
      assert.equal(answer.peers.length, 1)
      assert.deepEqual(answer.peers[0]?.addrs.map(bytes => multiaddr(bytes).toString()), ['/ip4/51.15.0.7/tcp/1'])
    })

    it('tells a loopback requester loopback and LAN addresses, but never unspecified ones', async () => {
      const b = await node({}, 'tcp')
      const a = await node({}, 'tcp')
      const random = seededRandom(13)
      const id = fakePeerId(random)
      b.services.discovery.table.addFoundNode({
        id,
        multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/1'), multiaddr('/ip4/10.1.2.3/tcp/1'), multiaddr('/ip4/0.0.0.0/tcp/1'), multiaddr('/ip6/::/tcp/1')]
      })
      const answer = await ask(a, b)
      assert.deepEqual(answer.peers[0]?.addrs.map(bytes => multiaddr(bytes).toString()), ['/ip4/127.0.0.1/tcp/1', '/ip4/10.1.2.3/tcp/1'])
    })

    it('leaves out the farthest nodes when the answer would not fit maxNodesMessageSize', async () => {
      const b = await node({ server: { maxNodesMessageSize: 400 } })
      const a = await node()
      const random = seededRandom(14)
      for (let i = 0; i < 30; i++) {
        b.services.discovery.table.addFoundNode({ id: fakePeerId(random), multiaddrs: [multiaddr(`/ip4/51.15.${i}.1/tcp/4001`)] })
      }
      const expected = b.services.discovery.table.closest(target, 16, { preferLive: true }).map(n => n.id.toString())
      const answer = await ask(a, b)
      assert(Message.encode(answer).byteLength <= 400)
      assert(answer.peers.length > 0 && answer.peers.length < 16)
      const found = await a.services.discovery.client.findNode(peerInfoOf(b), target)
      assert.deepEqual(found.map(p => p.id.toString()), expected.slice(0, answer.peers.length))
    })
  })

  describe('contacts', () => {
    it('reports the requester of a valid request with its memory addresses', async () => {
      const b = await node()
      const a = await node()
      await a.services.discovery.client.ping(peerInfoOf(b))
      await waitFor(() => b.services.discovery.contacts.length === 1, 'the contact')
      const contact = b.services.discovery.contacts[0]
      assert.equal(contact?.id.toString(), a.peerId.toString())
      assert.deepEqual(contact?.multiaddrs.map(String), peerInfoOf(a).multiaddrs.map(String))
      assert.equal(b.services.discovery.server.stats.contact, 1)
    })

    it("keeps only the requester's addresses at the IP its connection comes from", async () => {
      const b = await node({}, 'tcp')
      const a = await node({}, 'tcp')
      await a.dial(b.getMultiaddrs())
      await waitFor(async () => (await b.peerStore.get(a.peerId).catch(() => undefined))?.addresses.length === 1, 'identify')
      // claims the requester's connection does not back are dropped, or it could point us at
      // a victim; addresses without an IP are kept when the relay rules let this connection
      // carry them (a local name over loopback: yes; a memory address over TCP: no)
      await b.peerStore.merge(a.peerId, { multiaddrs: [multiaddr('/ip4/51.15.0.1/tcp/4001'), multiaddr('/dns4/localhost/tcp/4001'), multiaddr('/memory/dropped')] })
      await a.services.discovery.client.ping(b.peerId)
      await waitFor(() => b.services.discovery.contacts.length === 1, 'the contact')
      const reported = b.services.discovery.contacts[0]?.multiaddrs.map(String) ?? []
      assert(reported.includes('/dns4/localhost/tcp/4001'), 'a local name is kept from a loopback requester')
      assert(!reported.includes('/memory/dropped'), 'a memory address is dropped over TCP')
      assert(!reported.includes('/ip4/51.15.0.1/tcp/4001'))
      assert(reported.some(ma => ma.startsWith('/ip4/127.0.0.1/tcp/')))
    })

    it('reports every valid request, reading the peer store once per requester for a while', async () => {
      const b = await node()
      const a = await node()
      await a.dial(b.getMultiaddrs())
      await waitFor(async () => (await b.peerStore.get(a.peerId).catch(() => undefined))?.addresses.length === 1, 'identify')
      let reads = 0
      const get = b.peerStore.get.bind(b.peerStore)
      b.peerStore.get = async (...args) => { reads++; return get(...args) }
      for (let i = 0; i < 5; i++) {
        await a.services.discovery.client.ping(b.peerId)
      }
      await waitFor(() => b.services.discovery.contacts.length === 5, 'five contacts')
      assert.equal(reads, 1)
    })

    it('waits for identify when it does not know the requester yet', async () => {
      const b = await node()
      const a = await node()
      assert.equal(await b.peerStore.has(a.peerId), false)
      await a.services.discovery.client.findNode(peerInfoOf(b), target)
      await waitFor(() => b.services.discovery.contacts.length === 1, 'the contact')
      assert.equal(b.services.discovery.server.stats.contactWithoutAddress, undefined)
    })
  })

  describe('start and stop', () => {
    it('unregisters on stop and answers again after start', async () => {
      const b = await node()
      const a = await node()
      await b.services.discovery.server.stop()
      await b.services.discovery.server.stop()
      assert.equal(b.getProtocols().includes(PROTOCOL), false)
      await assert.rejects(a.services.discovery.client.ping(peerInfoOf(b)))
      await b.services.discovery.server.start()
      await b.services.discovery.server.start()
      await a.services.discovery.client.ping(peerInfoOf(b))
    })

    it('aborts the requests it is serving on stop', async () => {
      const b = await node()
      const a = await node()
      const stream = await a.dialProtocol(b.getMultiaddrs(), PROTOCOL)
      await waitFor(() => b.services.discovery.server.serving === 1, 'the stream to be served')
      await b.services.discovery.server.stop()
      assert.equal(b.services.discovery.server.stats.aborted, 1)
      stream.abort(new Error('done'))
    })

    it('refuses settings that are not positive', async () => {
      const n = await nodes.create<{ capture: ComponentsCapture }>({ services: { capture: captureComponents() } })
      const base = { closest: () => [], onContact: () => {} }
      assert.throws(() => new ProtocolServer(n.services.capture.components, { ...base, maxInboundStreams: 0 }), { name: 'InvalidParametersError' })
      assert.throws(() => new ProtocolServer(n.services.capture.components, { ...base, rateLimit: { perPeer: { burst: 0, perSecond: 1 } } }), { name: 'InvalidParametersError' })
    })
  })
})
