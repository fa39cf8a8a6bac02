import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { MAX_NODES_MESSAGE_SIZE, PROTOCOL } from '../../src/constants.js'
import { toPbPeer } from '../../src/protocol/convert.js'
import { Message } from '../../src/protocol/pb/message.js'
import { seededRandom } from '../../src/table/random.js'
import { peerInfoOf, waitFor } from '../utils/libp2p.js'
import { fakePeerId } from '../utils/peers.js'
import { answerByHand, concat, frame, protocolService, streamClosed, useNodes, varint } from './utils.js'
import type { ProtocolService } from './utils.js'
import type { TestNode } from '../utils/libp2p.js'
import type { Stream } from '@libp2p/interface'

interface Services extends Record<string, unknown> { discovery: ProtocolService }

const target = new Uint8Array(32).fill(3)
const random = seededRandom(21)

describe('bad input', () => {
  const nodes = useNodes()

  describe('sent to the server', () => {
    let server: TestNode<Services>
    let sender: TestNode<Services>

    beforeEach(async () => {
      // a long request timeout: a stream the server waits on would show as a test timeout
      server = await nodes.create<Services>({ services: { discovery: protocolService({ server: { requestTimeout: 20_000 } }) } })
      sender = await nodes.create<Services>({ services: { discovery: protocolService() } })
    })

    /** Opens a raw stream to the server, writes `bytes`, and waits for the stream to end. */
    async function send (bytes: Uint8Array): Promise<Stream> {
      const stream = await sender.dialProtocol(server.getMultiaddrs(), PROTOCOL)
      stream.send(bytes)
      await streamClosed(stream)
      return stream
    }

    /** The server refused and counted it, reported no contact, and still serves others. */
    async function assertRefused (stream: Stream, counter: string): Promise<void> {
      assert.equal(stream.status, 'reset', 'the stream was reset')
      assert.equal(server.services.discovery.server.stats[counter], 1, counter)
      assert.deepEqual(server.services.discovery.contacts, [], 'no contact reported')
      await sender.services.discovery.client.ping(server.peerId)
      await waitFor(() => server.services.discovery.contacts.length === 1, 'the good request to count')
    }

    it('resets a frame over the size limit after reading only its length prefix', async () => {
      // the prefix alone: a server that waited for the body would never end the stream
      const stream = await send(varint(4097))
      await assertRefused(stream, 'invalid.oversized')
    })

    it('resets a peer that streams a huge frame without buffering it', async () => {
      const stream = await send(concat(varint(1_000_000), new Uint8Array(64 * 1024)))
      await assertRefused(stream, 'invalid.oversized')
    })

    it('resets a frame that is not protobuf', async () => {
      await assertRefused(await send(frame(Uint8Array.from([0xff, 0xff, 0xff]))), 'invalid.undecodable')
    })

    it('resets a message of an unknown type', async () => {
      await assertRefused(await send(frame(Uint8Array.from([0x08, 99]))), 'invalid.unknown-type')
    })

    it('resets a message without a type', async () => {
      await assertRefused(await send(frame(new Uint8Array(0))), 'invalid.unknown-type')
    })

    it('resets an answer sent as a request', async () => {
      await assertRefused(await send(frame(Message.encode({ type: Message.Type.PONG, peers: [] }))), 'invalid.unexpected-type')
    })

    it('resets a FIND_NODE whose target is not 32 bytes', async () => {
      const bytes = Message.encode({ type: Message.Type.FIND_NODE, target: new Uint8Array(31), peers: [] })
      await assertRefused(await send(frame(bytes)), 'invalid.bad-target')
    })

    it('resets a request that carries peers', async () => {
      const bytes = Message.encode({ type: Message.Type.PING, peers: [toPbPeer(fakePeerId(random), [])] })
      await assertRefused(await send(frame(bytes)), 'invalid.too-many-peers')
    })

    it('times out a stream that never writes, and frees it', async () => {
      const quick = await nodes.create<Services>({ services: { discovery: protocolService({ server: { requestTimeout: 200 } }) } })
      const stream = await sender.dialProtocol(quick.getMultiaddrs(), PROTOCOL)
      await streamClosed(stream)
      assert.equal(stream.status, 'reset')
      assert.equal(quick.services.discovery.server.stats.timeout, 1)
      assert.deepEqual(quick.services.discovery.contacts, [])
      await waitFor(() => quick.getConnections(sender.peerId).every(c => c.streams.every(s => s.protocol !== PROTOCOL)), 'the stream to be freed')
      assert.equal(quick.services.discovery.server.serving, 0)
    })
  })

  describe('answered to the client', () => {
    let client: TestNode<Services>
    let peer: TestNode

    beforeEach(async () => {
      client = await nodes.create<Services>({ services: { discovery: protocolService({ client: { requestTimeout: 2000 } }) } })
      peer = await nodes.create()
    })

    /** Makes the peer answer with `bytes`; returns the peer-side stream statuses seen. */
    async function answer (bytes: Uint8Array): Promise<string[]> {
      const statuses: string[] = []
      await answerByHand(peer, async (stream) => {
        stream.send(bytes)
        await streamClosed(stream).catch(() => {})
        statuses.push(stream.status)
      })
      return statuses
    }

    /** `request` failed with `name`, was counted as `counter`, and its stream was reset. */
    async function assertRejected (request: Promise<unknown>, name: string, counter: string, statuses: string[]): Promise<void> {
      await assert.rejects(request, { name })
      assert.equal(client.services.discovery.client.stats[counter], 1, counter)
      await waitFor(() => statuses.length === 1, 'the answering stream to end')
      assert.deepEqual(statuses, ['reset'], 'the client aborted the stream')
    }

    const findNode = async (): Promise<unknown> => client.services.discovery.client.findNode(peerInfoOf(peer), target)
    const nodes17 = (): Message.Peer[] => Array.from({ length: 17 }, () => toPbPeer(fakePeerId(random), [multiaddr('/ip4/51.15.0.1/tcp/1')]))

    it('refuses an answer over the size limit after its length prefix', async () => {
      const statuses = await answer(varint(MAX_NODES_MESSAGE_SIZE + 1))
      await assertRejected(findNode(), 'InvalidMessageError', 'invalid.oversized', statuses)
    })

    it('refuses an answer that is not protobuf', async () => {
      const statuses = await answer(frame(Uint8Array.from([0xff, 0xff, 0xff])))
      await assertRejected(findNode(), 'InvalidMessageError', 'invalid.undecodable', statuses)
    })

    it('refuses an answer of an unknown type', async () => {
      const statuses = await answer(frame(Uint8Array.from([0x08, 42])))
      await assertRejected(client.services.discovery.client.ping(peerInfoOf(peer)), 'InvalidMessageError', 'invalid.unknown-type', statuses)
    })

    it('refuses an answer that does not match the request', async () => {
      const statuses = await answer(frame(Message.encode({ type: Message.Type.NODES, peers: [] })))
      await assertRejected(client.services.discovery.client.ping(peerInfoOf(peer)), 'UnexpectedResponseError', 'invalid.unexpected-type', statuses)
    })

    it('refuses NODES with more than bucketSize peers', async () => {
      const statuses = await answer(frame(Message.encode({ type: Message.Type.NODES, peers: nodes17() })))
      await assertRejected(findNode(), 'InvalidMessageError', 'invalid.too-many-peers', statuses)
    })

    it('refuses NODES with a peer of too many addresses', async () => {
      const addrs = Array.from({ length: 17 }, (_, i) => multiaddr(`/ip4/51.15.0.${i}/tcp/1`))
      const statuses = await answer(frame(Message.encode({ type: Message.Type.NODES, peers: [toPbPeer(fakePeerId(random), addrs)] })))
      await assertRejected(findNode(), 'InvalidMessageError', 'invalid.too-many-addrs', statuses)
    })

    it('refuses NODES with an invalid peer id, and uses none of its peers', async () => {
      const peers = [toPbPeer(fakePeerId(random), [multiaddr('/ip4/51.15.0.1/tcp/1')]), { id: Uint8Array.from([1, 2, 3]), addrs: [] }]
      const statuses = await answer(frame(Message.encode({ type: Message.Type.NODES, peers })))
      await assertRejected(findNode(), 'InvalidMessageError', 'invalid.invalid-peer-id', statuses)
    })

    it('refuses NODES with an invalid multiaddr, and uses none of its peers', async () => {
      const good = toPbPeer(fakePeerId(random), [multiaddr('/ip4/51.15.0.1/tcp/1')])
      const bad = { id: fakePeerId(random).toMultihash().bytes, addrs: [Uint8Array.from([0xff, 0xff])] }
      const statuses = await answer(frame(Message.encode({ type: Message.Type.NODES, peers: [good, bad] })))
      await assertRejected(findNode(), 'InvalidMessageError', 'invalid.invalid-multiaddr', statuses)
    })

    it('refuses NODES with an empty multiaddr', async () => {
      const bad = { id: fakePeerId(random).toMultihash().bytes, addrs: [new Uint8Array(0)] }
      const statuses = await answer(frame(Message.encode({ type: Message.Type.NODES, peers: [bad] })))
      await assertRejected(findNode(), 'InvalidMessageError', 'invalid.invalid-multiaddr', statuses)
    })

    it('times out a peer that never answers', async () => {
      client = await nodes.create<Services>({ services: { discovery: protocolService({ client: { requestTimeout: 300 } }) } })
      const statuses: string[] = []
      await answerByHand(peer, async (stream) => {
        await streamClosed(stream, 10_000).catch(() => {})
        statuses.push(stream.status)
      })
      await assertRejected(client.services.discovery.client.ping(peerInfoOf(peer)), 'TimeoutError', 'timeout', statuses)
    })
  })
})
