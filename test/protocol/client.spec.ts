import assert from 'node:assert/strict'
import { setTimeout as delay } from 'node:timers/promises'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { PROTOCOL } from '../../src/constants.js'
import { ProtocolClient } from '../../src/protocol/client.js'
import { toPbPeer } from '../../src/protocol/convert.js'
import { Message } from '../../src/protocol/pb/message.js'
import { seededRandom } from '../../src/table/random.js'
import { captureComponents, peerInfoOf, slowDialRecords, waitFor } from '../utils/libp2p.js'
import { fakePeerId } from '../utils/peers.js'
import { answerByHand, protocolService, useNodes } from './utils.js'
import type { ProtocolService } from './utils.js'
import type { ProtocolClientInit } from '../../src/protocol/client.js'
import type { ComponentsCapture, TestNode } from '../utils/libp2p.js'

interface Services extends Record<string, unknown> { discovery: ProtocolService }

const target = new Uint8Array(32).fill(7)

describe('ProtocolClient', () => {
  const nodes = useNodes()

  /** Two nodes running the protocol; the client side may get its own settings. */
  async function pair (client: ProtocolClientInit = {}): Promise<[TestNode<Services>, TestNode<Services>]> {
    const a = await nodes.create<Services>({ services: { discovery: protocolService({ client }) } })
    const b = await nodes.create<Services>({ services: { discovery: protocolService() } })
    return [a, b]
  }

  describe('ping', () => {
    it('resolves when the peer answers PONG over the memory transport', async () => {
      const [a, b] = await pair()
      await a.services.discovery.client.ping(peerInfoOf(b))
      assert.equal(a.services.discovery.client.stats['sent.PING'], 1)
      assert.equal(a.services.discovery.client.stats['received.PONG'], 1)
      assert.equal(b.services.discovery.server.stats['received.PING'], 1)
    })

    it('makes a round trip over TCP on 127.0.0.1 with noise', async () => {
      const options = { transport: 'tcp' as const, encryption: 'noise' as const }
      const a = await nodes.create<Services>({ ...options, services: { discovery: protocolService() } })
      const b = await nodes.create<Services>({ ...options, services: { discovery: protocolService() } })
      const listed = fakePeerId(seededRandom(3))
      b.services.discovery.table.addFoundNode({ id: listed, multiaddrs: [multiaddr('/ip4/127.0.0.1/tcp/4001')] })
      await a.services.discovery.client.ping(peerInfoOf(b))
      const found = await a.services.discovery.client.findNode(peerInfoOf(b), target)
      assert.deepEqual(found.map(p => p.id.toString()), [listed.toString()])
      // a loopback requester may be told loopback addresses
      assert.deepEqual(found[0]?.multiaddrs.map(String), ['/ip4/127.0.0.1/tcp/4001'])
    })

    it('dials the multiaddrs of a PeerInfo the peer store does not know', async () => {
      const [a, b] = await pair()
      assert.equal(await a.peerStore.has(b.peerId), false)
      await a.services.discovery.client.ping(peerInfoOf(b))
      assert.equal(a.services.discovery.client.stats.connectionsOpened, 1)
    })

    it('throws TimeoutError when the peer never answers', async () => {
      const [a] = await pair({ requestTimeout: 200 })
      const silent = await nodes.create()
      await answerByHand(silent, async () => new Promise(() => {}))
      await assert.rejects(a.services.discovery.client.ping(peerInfoOf(silent)), { name: 'TimeoutError' })
      assert.equal(a.services.discovery.client.stats.timeout, 1)
    })

    it('counts the dial in the request timeout', async () => {
      const [a] = await pair({ requestTimeout: 200 })
      const nobody = fakePeerId(seededRandom(4))
      // nothing listens there: the dial fails or hangs, and either way the request ends
      await assert.rejects(a.services.discovery.client.ping({ id: nobody, multiaddrs: [multiaddr('/memory/nobody-listens-here')] }))
      assert.equal((a.services.discovery.client.stats.dialError ?? 0) + (a.services.discovery.client.stats.timeout ?? 0), 1)
    })

    it('stops with AbortError when the caller aborts', async () => {
      const [a] = await pair()
      const silent = await nodes.create()
      await answerByHand(silent, async () => new Promise(() => {}))
      const controller = new AbortController()
      const request = a.services.discovery.client.ping(peerInfoOf(silent), { signal: controller.signal })
      setTimeout(() => { controller.abort() }, 50)
      await assert.rejects(request, { name: 'AbortError' })
      assert.equal(a.services.discovery.client.stats.aborted, 1)
    })

    it('aborts requests in flight on stop() and refuses new ones until start()', async () => {
      const [a, b] = await pair()
      const silent = await nodes.create()
      await answerByHand(silent, async () => new Promise(() => {}))
      const client = a.services.discovery.client
      const request = client.ping(peerInfoOf(silent))
      await waitFor(() => silent.getConnections().length > 0, 'the request to connect')
      client.stop()
      await assert.rejects(request, { name: 'AbortError' })
      await assert.rejects(client.ping(peerInfoOf(b)), { name: 'NotStartedError' })
      client.start()
      await client.ping(peerInfoOf(b))
    })
  })

  describe('findNode', () => {
    it('returns the nodes the peer sent, closest first, as PeerInfos', async () => {
      const [a, b] = await pair()
      const random = seededRandom(5)
      for (let i = 0; i < 40; i++) {
        b.services.discovery.table.addFoundNode({ id: fakePeerId(random), multiaddrs: [multiaddr(`/ip4/51.15.${i}.1/tcp/4001`)] })
      }
      const expected = b.services.discovery.table.closest(target, 16, { preferLive: true })
      const found = await a.services.discovery.client.findNode(peerInfoOf(b), target)
      assert.equal(found.length, 16)
      assert.deepEqual(found.map(p => p.id.toString()), expected.map(n => n.id.toString()))
      assert.deepEqual(found.map(p => p.multiaddrs.map(String)), expected.map(n => n.addrs.map(String)))
    })

    it('refuses a target that is not 32 bytes before sending anything', async () => {
      const [a, b] = await pair()
      await assert.rejects(a.services.discovery.client.findNode(peerInfoOf(b), new Uint8Array(31)), { name: 'InvalidParametersError' })
      assert.equal(a.services.discovery.client.stats['sent.FIND_NODE'], undefined)
    })

    it('drops addresses a public peer may not relay, and nodes left with none', async () => {
      const [a] = await pair()
      const liar = await nodes.create()
      const random = seededRandom(6)
      const good = fakePeerId(random)
      const bad = fakePeerId(random)
      await answerByHand(liar, async (stream) => {
        await pbStream(stream).write({
          type: Message.Type.NODES,
          peers: [
            toPbPeer(good, [multiaddr('/ip4/51.15.0.1/tcp/1'), multiaddr('/ip4/127.0.0.1/tcp/1'), multiaddr('/ip4/10.0.0.1/tcp/1')]),
            toPbPeer(bad, [multiaddr('/ip4/0.0.0.0/tcp/1'), multiaddr('/ip4/192.168.1.1/tcp/1'), multiaddr('/ip4/203.0.113.9/tcp/1')])
          ]
        }, Message)
        await stream.close()
      })
      // over the memory transport the sender has no IP: it counts as a public host
      const found = await a.services.discovery.client.findNode(peerInfoOf(liar), target)
      assert.deepEqual(found.map(p => p.id.toString()), [good.toString()])
      assert.deepEqual(found[0]?.multiaddrs.map(String), ['/ip4/51.15.0.1/tcp/1'])
      const stats = a.services.discovery.client.stats
      assert.equal(stats['relayRefused.loopback'], 1)
      assert.equal(stats['relayRefused.lan'], 2)
      assert.equal(stats['relayRefused.unspecified'], 1)
      assert.equal(stats['relayRefused.special'], 1)
    })
  })

  describe('ping with atAddrs', () => {
    it('dials the listed addresses when the only open connection is the peer\'s own', async () => {
      const [a, b] = await pair()
      // b dialed a: an inbound connection proves b alive, not reachable at its addresses
      const inbound = await b.dial(a.getMultiaddrs())
      await a.services.discovery.client.ping(peerInfoOf(b), { atAddrs: true })
      assert.equal(a.services.discovery.client.stats.connectionsOpened, 1)
      assert.ok(a.getConnections(b.peerId).some(c => c.direction === 'outbound'))
      assert.equal(inbound.status, 'open')
    })

    it('fails at an address where the peer is not, though a connection to it is open', async () => {
      const [a, b] = await pair({ requestTimeout: 1000 })
      await a.dial(b.getMultiaddrs())
      await a.services.discovery.client.ping(b.peerId)
      await assert.rejects(a.services.discovery.client.ping({ id: b.peerId, multiaddrs: [multiaddr('/memory/somebody-else')] }, { atAddrs: true }))
    })

    it('reuses a connection we dialed to a listed address', async () => {
      const [a, b] = await pair()
      await a.dial(b.getMultiaddrs())
      await a.services.discovery.client.ping(peerInfoOf(b), { atAddrs: true })
      assert.equal(a.services.discovery.client.stats.connectionsOpened, undefined)
      assert.equal(a.getConnections(b.peerId).length, 1)
    })

    it('over TCP, takes an inbound connection from the listed IP without a second dial', async () => {
      const options = { transport: 'tcp' as const }
      const a = await nodes.create<Services>({ ...options, services: { discovery: protocolService() } })
      const b = await nodes.create<Services>({ ...options, services: { discovery: protocolService() } })
      // b dials from 127.0.0.1, the IP it lists: a's first check needs no connection of its own
      await b.dial(a.getMultiaddrs())
      await a.services.discovery.client.ping(peerInfoOf(b), { atAddrs: true })
      assert.equal(a.services.discovery.client.stats.connectionsOpened, undefined)
      assert.equal(a.getConnections(b.peerId).length, 1, 'one connection for the pair')
    })

    it('over TCP, dials past an inbound connection from another IP, then reuses its own', async () => {
      const a = await nodes.create<Services>({ transport: 'tcp', services: { discovery: protocolService() } })
      // b lists 127.0.0.2 but its dial to a comes from 127.0.0.1
      const b = await nodes.create<Services>({ transport: 'tcp', listenIp: '127.0.0.2', services: { discovery: protocolService() } })
      await b.dial(a.getMultiaddrs())
      await a.services.discovery.client.ping(peerInfoOf(b), { atAddrs: true })
      await a.services.discovery.client.ping(peerInfoOf(b), { atAddrs: true })
      assert.equal(a.services.discovery.client.stats.connectionsOpened, 1, 'one dial, then its connection reused')
      // b's own connection stays; ours, a second one for the pair, goes once it is done
      await waitFor(() => a.getConnections(b.peerId).length === 1, 'the pair to hold one connection')
    })

    it('refuses a peer without addresses, sending nothing', async () => {
      const [a, b] = await pair()
      await assert.rejects(a.services.discovery.client.ping({ id: b.peerId, multiaddrs: [] }, { atAddrs: true }), { name: 'InvalidParametersError' })
      assert.equal(b.services.discovery.server.stats['received.PING'], undefined)
    })
  })

  describe('connections', () => {
    it('reuses an open connection and leaves it open', async () => {
      const [a, b] = await pair()
      const connection = await a.dial(b.getMultiaddrs())
      await a.services.discovery.client.ping(b.peerId)
      await a.services.discovery.client.findNode(b.peerId, target)
      assert.equal(a.services.discovery.client.stats.connectionsOpened, undefined)
      assert.deepEqual(a.getConnections(b.peerId).map(c => c.id), [connection.id])
      assert.equal(connection.status, 'open')
    })

    it('closes a connection it opened only for a request once the answer is read', async () => {
      const [a, b] = await pair({ connectionIdleLinger: 0 })
      await a.services.discovery.client.ping(peerInfoOf(b))
      await waitFor(() => a.getConnections(b.peerId).length === 0, 'the request connection to close')
      assert.equal(a.services.discovery.client.stats.connectionsClosed, 1)
      assert.equal(a.services.discovery.client.requestConnections, 0)
    })

    it('waits for identify before closing, so the answering node learns our addresses', async () => {
      const [a, b] = await pair()
      await a.services.discovery.client.ping(peerInfoOf(b))
      await waitFor(() => b.services.discovery.contacts.length === 1, 'the contact report')
      assert.deepEqual(b.services.discovery.contacts[0]?.multiaddrs.map(String), a.getMultiaddrs().map(ma => ma.decapsulateCode(421).toString()))
    })

    it('keeps an idle request connection for the next request while it has room, then closes it', async () => {
      const [a, b] = await pair({ connectionIdleLinger: 300 })
      await a.services.discovery.client.ping(peerInfoOf(b))
      await a.services.discovery.client.findNode(peerInfoOf(b), target)
      assert.equal(a.services.discovery.client.stats.connectionsOpened, 1, 'the second request reused the first one\'s connection')
      await waitFor(() => a.getConnections(b.peerId).length === 0, 'the idle connection to close')
      assert.equal(a.services.discovery.client.stats.connectionsClosed, 1)
    })

    it('does not gather close listeners on a connection reused while idle', async () => {
      const [a, b] = await pair({ connectionIdleLinger: 5000 })
      const listeners = (): number => Math.max(0, ...a.getConnections(b.peerId).map(c => (c as unknown as { listenerCount(type: string): number }).listenerCount('close')))
      await a.services.discovery.client.ping(peerInfoOf(b))
      await waitFor(() => a.getConnections(b.peerId)[0]?.streams.every(s => s.status !== 'open') === true, 'the first request\'s streams to end')
      const first = listeners()
      for (let i = 0; i < 30; i++) {
        await a.services.discovery.client.ping(peerInfoOf(b))
        // long enough for the released connection to start waiting for reuse
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      assert.equal(a.services.discovery.client.stats.connectionsOpened, 1)
      assert.ok(listeners() <= first + 1, `${listeners()} close listeners after 31 requests, ${first} after one`)
    })

    it('keeps a request connection when keepConnection says so', async () => {
      const [a, b] = await pair({ keepConnection: () => true, connectionIdleLinger: 0 })
      await a.services.discovery.client.ping(peerInfoOf(b))
      await waitFor(() => a.services.discovery.client.stats.connectionsHandedOver === 1, 'the hand-over')
      assert.equal(a.getConnections(b.peerId).length, 1)
    })

    it('leaves a request connection open once another protocol uses it', async () => {
      const [a] = await pair()
      const b = await nodes.create()
      await b.handle('/test/hold/1.0.0', () => {})
      // answer only once the other protocol's stream is up, so it is there at release
      await answerByHand(b, async (stream, connection) => {
        await waitFor(() => connection.streams.some(s => s.protocol === '/test/hold/1.0.0'), 'the other stream')
        await pbStream(stream).write({ type: Message.Type.PONG, peers: [] }, Message)
        await stream.close()
      })
      const request = a.services.discovery.client.ping(peerInfoOf(b))
      await waitFor(() => a.getConnections(b.peerId).length === 1, 'the request connection')
      const held = await a.dialProtocol(b.peerId, '/test/hold/1.0.0')
      await request
      await waitFor(() => a.services.discovery.client.stats.connectionsHandedOver === 1, 'the hand-over')
      assert.equal(a.getConnections(b.peerId)[0]?.status, 'open')
      held.abort(new Error('done'))
    })

    it('lets more requesters through than a busy node has connection slots, as each closes its own', async () => {
      const busy = await nodes.create<Services>({ services: { discovery: protocolService() }, connectionManager: { maxConnections: 4 } })
      const requesters = await nodes.createMany<Services>(12, { services: { discovery: protocolService({ client: { connectionIdleLinger: 0 } }) } })
      for (let i = 0; i < requesters.length; i += 3) {
        // a batch takes the free slots; each requester closes the connection it opened
        // once its answer is in, so the next batch finds them free
        await Promise.all(requesters.slice(i, i + 3).map(async r => r.services.discovery.client.findNode(peerInfoOf(busy), target)))
        await waitFor(() => busy.getConnections().length <= 1, 'the busy node to have free slots again')
      }
      assert.equal(busy.services.discovery.server.stats['sent.NODES'], 12)
    })

    it('never closes a connection it did not open, however busy the node', async () => {
      const busy = await nodes.create<Services>({ services: { discovery: protocolService() }, connectionManager: { maxConnections: 4 } })
      const keep = { client: { keepConnection: () => true } }
      const requesters = await nodes.createMany<Services>(2, { services: { discovery: protocolService(keep) } })
      await Promise.all(requesters.map(async r => r.services.discovery.client.findNode(peerInfoOf(busy), target)))
      await Promise.all(requesters.map(async r => r.services.discovery.client.ping(peerInfoOf(busy))))
      await delay(500)
      for (const requester of requesters) {
        assert.equal(busy.getConnections(requester.peerId).length, 1, 'the inbound connection stays open')
      }
    })

    it('closes its request connection though a libp2p ping stream is open on it', async () => {
      const [a] = await pair({ connectionIdleLinger: 0 })
      const b = await nodes.create()
      // what libp2p's connection monitor does on every connection every 10 s
      await b.handle('/ipfs/ping/1.0.0', async (stream) => {
        await delay(3000)
        stream.abort(new Error('done'))
      })
      await answerByHand(b, async (stream) => {
        await delay(500)
        await pbStream(stream).write({ type: Message.Type.PONG, peers: [] }, Message)
        await stream.close()
      })
      const request = a.services.discovery.client.ping(peerInfoOf(b))
      await waitFor(() => a.getConnections(b.peerId).length === 1, 'the request connection')
      const ping = await a.getConnections(b.peerId)[0]!.newStream('/ipfs/ping/1.0.0')
      await request
      await waitFor(() => a.services.discovery.client.stats.connectionsClosed === 1, 'the request connection to close')
      assert.equal(a.services.discovery.client.stats.connectionsHandedOver, undefined)
      ping.abort(new Error('done'))
    })

    it('never takes over a connection somebody else was dialing', async () => {
      const [a, b] = await pair({ connectionIdleLinger: 0 })
      const dial = a.dial(b.getMultiaddrs())
      await a.services.discovery.client.ping(peerInfoOf(b))
      const connection = await dial
      await delay(300)
      assert.equal(connection.status, 'open')
      assert.equal(a.services.discovery.client.stats.connectionsOpened, undefined)
    })

    it('closes a connection its dial opened after the request gave up on it', async () => {
      const [a, b] = await pair({ requestTimeout: 500, connectionIdleLinger: 0 })
      slowDialRecords(a, b.peerId, 1000)
      await assert.rejects(a.services.discovery.client.ping(peerInfoOf(b)), { name: 'TimeoutError' })
      await waitFor(() => a.getConnections(b.peerId).length === 0, 'the abandoned connection to close')
      assert.equal(a.services.discovery.client.stats.connectionsAbandoned, 1)
      assert.equal(a.services.discovery.client.stats.connectionsClosed, 1)
    })

    it('keeps at most maxRequestConnections idle request connections', async () => {
      const a = await nodes.create<Services>({ services: { discovery: protocolService({ client: { maxRequestConnections: 2, connectionIdleLinger: 30_000 } }) } })
      const peers = await nodes.createMany<Services>(4, { services: { discovery: protocolService() } })
      for (const peer of peers) {
        await a.services.discovery.client.ping(peerInfoOf(peer))
      }
      await waitFor(() => a.services.discovery.client.requestConnections <= 2, 'the oldest idle connections to close')
      assert.equal(a.services.discovery.client.stats.connectionsClosed, 2)
      assert.equal(a.getConnections().length, 2)
    })

    it('ends a request at its deadline, its one retry included', async () => {
      const [a] = await pair({ requestTimeout: 2000 })
      const flaky = await nodes.create()
      let streams = 0
      await answerByHand(flaky, async (_stream, connection) => {
        streams++
        if (streams === 1) {
          // the connection goes away halfway through the first attempt (leaving the dial
          // time to spare on a busy machine); the retry hears nothing
          await delay(1000)
          await connection.close()
          return
        }
        await delay(5000)
      })
      const started = Date.now()
      await assert.rejects(a.services.discovery.client.ping(peerInfoOf(flaky)), { name: 'TimeoutError' })
      const elapsed = Date.now() - started
      assert.equal(streams, 2, 'it retried')
      // a retry with a deadline of its own would end at 3000 ms or later
      assert.ok(elapsed < 2600, `the request took ${elapsed} ms against a 2000 ms deadline`)
    })

    it('retries once on a fresh connection when the connection closes mid-request', async () => {
      const [a] = await pair()
      const flaky = await nodes.create()
      let streams = 0
      await answerByHand(flaky, async (stream, connection) => {
        streams++
        if (streams === 1) {
          // what the connection pruner does to a connection it picked
          await connection.close()
          return
        }
        await pbStream(stream).write({ type: Message.Type.PONG, peers: [] }, Message)
        await stream.close()
      })
      await a.services.discovery.client.ping(peerInfoOf(flaky))
      assert.equal(streams, 2)
      assert.equal(a.services.discovery.client.stats.retry, 1)
      assert.equal(a.services.discovery.client.stats.connectionLost, 1)
    })

    it('gives up after one retry', async () => {
      const [a] = await pair()
      const flaky = await nodes.create()
      await answerByHand(flaky, async (_stream, connection) => {
        await connection.close()
      })
      await assert.rejects(a.services.discovery.client.ping(peerInfoOf(flaky)))
      assert.equal(a.services.discovery.client.stats.retry, 1)
      assert.equal(a.services.discovery.client.stats.connectionLost, 2)
    })
  })

  describe('construction', () => {
    it('refuses settings that are not positive', async () => {
      const node = await nodes.create<{ capture: ComponentsCapture }>({ services: { capture: captureComponents() } })
      const components = node.services.capture.components
      assert.throws(() => new ProtocolClient(components, { requestTimeout: 0 }), { name: 'InvalidParametersError' })
      assert.throws(() => new ProtocolClient(components, { bucketSize: -1 }), { name: 'InvalidParametersError' })
      assert.equal(new ProtocolClient(components).stats['sent.PING'], undefined)
      assert.equal(PROTOCOL, '/kad-discovery/1.0.0')
    })
  })
})
