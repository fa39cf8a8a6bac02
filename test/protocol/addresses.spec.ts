import assert from 'node:assert/strict'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { PROTOCOL, REQUEST_TIMEOUT } from '../../src/constants.js'
import { toPbPeer } from '../../src/protocol/convert.js'
import { Message } from '../../src/protocol/pb/message.js'
import { seededRandom } from '../../src/table/random.js'
import { captureComponents, peerInfoOf, waitFor } from '../utils/libp2p.js'
import { fakePeerId } from '../utils/peers.js'
import { answerByHand, protocolService, useNodes } from './utils.js'
import type { ProtocolService } from './utils.js'
import type { ComponentsCapture, TestNode } from '../utils/libp2p.js'
import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

interface Services extends Record<string, unknown> { discovery: ProtocolService, capture: ComponentsCapture }

const target = new Uint8Array(32).fill(3)

/**
 * Addresses without an IP (memory transport, DNS names) and LAN addresses, as they travel
 * in NODES answers and identify: DESIGN.md §6 and docs/PROTOCOL.md §4, through real nodes.
 */
describe('hearsay addresses', () => {
  const nodes = useNodes()

  async function node (transport: 'memory' | 'tcp', announce?: string[]): Promise<TestNode<Services>> {
    return nodes.create<Services>({ transport, announce, services: { discovery: protocolService(), capture: captureComponents() } })
  }

  /** Asks `server` for `target` by hand and returns the addresses of each peer it names. */
  async function ask (from: TestNode<Services>, server: TestNode<Services>): Promise<string[][]> {
    const stream = await from.dialProtocol(server.getMultiaddrs(), PROTOCOL)
    const pb = pbStream(stream)
    await pb.write({ type: Message.Type.FIND_NODE, target, peers: [] }, Message)
    const answer = await pb.read(Message)
    await stream.close()
    return answer.peers.map(p => p.addrs.map(bytes => multiaddr(bytes).toString()))
  }

  /**
   * Makes `server` see every requester as coming from `remoteAddr`: the real handler
   * runs on real streams, over a connection whose remote address is replaced. The only
   * way to test a LAN requester without a LAN interface (tests use 127.0.0.1 only).
   */
  async function seeRequestersAt (server: TestNode<Services>, remoteAddr: Multiaddr): Promise<void> {
    const { handler, options } = server.services.capture.components.registrar.getHandler(PROTOCOL)
    await server.unhandle(PROTOCOL)
    await server.handle(PROTOCOL, async (stream, connection) => {
      const seenFrom = new Proxy(connection, {
        get: (conn, property) => property === 'remoteAddr' ? remoteAddr : Reflect.get(conn, property)
      }) as Connection
      await handler(stream, seenFrom)
    }, options)
  }

  function table (server: TestNode<Services>, id: PeerId, addrs: string[]): void {
    server.services.discovery.table.addFoundNode({ id, multiaddrs: addrs.map(a => multiaddr(a)) })
  }

  describe('memory transport', () => {
    it('does not take in a TCP requester at the memory addresses its identify lists', async () => {
      const b = await node('tcp')
      const a = await node('tcp', ['/memory/only-inside-a-process'])
      await a.services.discovery.client.ping(peerInfoOf(b))
      const stats = b.services.discovery.server.stats
      // nothing usable is known, so the server waits for identify, which has usually
      // finished already: the whole wait (requestTimeout) passes before the verdict
      await waitFor(() => (stats.contact ?? 0) + (stats.contactWithoutAddress ?? 0) > 0, 'the contact to be judged', REQUEST_TIMEOUT + 5000)
      assert.deepEqual(b.services.discovery.contacts, [], 'no contact at a memory address that came over TCP')
      assert.equal(stats.contactWithoutAddress, 1)
    })

    it('takes in a memory requester at its memory addresses', async () => {
      const b = await node('memory')
      const a = await node('memory')
      await a.services.discovery.client.ping(peerInfoOf(b))
      await waitFor(() => b.services.discovery.contacts.length === 1, 'the contact')
      assert.deepEqual(b.services.discovery.contacts[0]?.multiaddrs.map(String), peerInfoOf(a).multiaddrs.map(String))
    })

    it('drops the memory addresses of a NODES answer that came over TCP, and counts them', async () => {
      const a = await node('tcp')
      const liar = await nodes.create({ transport: 'tcp' })
      const random = seededRandom(31)
      const mixed = fakePeerId(random)
      const memoryOnly = fakePeerId(random)
      await answerByHand(liar, async (stream) => {
        await pbStream(stream).write({
          type: Message.Type.NODES,
          peers: [
            toPbPeer(mixed, [multiaddr('/memory/a'), multiaddr('/ip4/51.15.0.1/tcp/1')]),
            toPbPeer(memoryOnly, [multiaddr('/memory/b'), multiaddr('/memory/c')])
          ]
        }, Message)
        await stream.close()
      })
      const found = await a.services.discovery.client.findNode(peerInfoOf(liar), target)
      assert.deepEqual(found.map(p => p.id.toString()), [mixed.toString()])
      assert.deepEqual(found[0]?.multiaddrs.map(String), ['/ip4/51.15.0.1/tcp/1'])
      assert.equal(a.services.discovery.client.stats['relayRefused.memory'], 3)
    })

    it('tells a TCP requester no memory address, and a memory requester every one', async () => {
      const random = seededRandom(32)
      const mixed = fakePeerId(random)
      const memoryOnly = fakePeerId(random)
      const overTcp = await node('tcp')
      table(overTcp, mixed, ['/memory/a', '/ip4/51.15.0.2/tcp/1'])
      table(overTcp, memoryOnly, ['/memory/b'])
      assert.deepEqual(await ask(await node('tcp'), overTcp), [['/ip4/51.15.0.2/tcp/1']])

      const inProcess = await node('memory')
      table(inProcess, mixed, ['/memory/a', '/ip4/51.15.0.2/tcp/1'])
      table(inProcess, memoryOnly, ['/memory/b'])
      const answer = await ask(await node('memory'), inProcess)
      assert.deepEqual(answer.flat().sort(), ['/ip4/51.15.0.2/tcp/1', '/memory/a', '/memory/b'])
    })
  })

  describe('DNS names', () => {
    it("drops local names from a public sender's NODES answer, and counts them", async () => {
      const a = await node('memory')
      // over the memory transport the sender has no IP: it counts as a public host
      const liar = await nodes.create({ transport: 'memory' })
      const random = seededRandom(33)
      const publicName = fakePeerId(random)
      const local = ['/dns4/localhost/tcp/22', '/dns6/api.localhost/tcp/1', '/dns4/printer.local/tcp/1',
        '/dns/db.internal/tcp/1', '/dnsaddr/router.lan', '/dns4/nas.home.arpa/tcp/1']
      await answerByHand(liar, async (stream) => {
        await pbStream(stream).write({
          type: Message.Type.NODES,
          peers: [
            toPbPeer(publicName, [multiaddr('/dns4/boot.example.org/tcp/4001')]),
            ...local.map(addr => toPbPeer(fakePeerId(random), [multiaddr(addr)]))
          ]
        }, Message)
        await stream.close()
      })
      const found = await a.services.discovery.client.findNode(peerInfoOf(liar), target)
      assert.deepEqual(found.map(p => p.id.toString()), [publicName.toString()])
      const stats = a.services.discovery.client.stats
      assert.equal(stats['relayRefused.loopback'], 2)
      assert.equal(stats['relayRefused.lan'], 4)
    })

    it('tells local names to a loopback requester only', async () => {
      const random = seededRandom(34)
      const b = await node('tcp')
      table(b, fakePeerId(random), ['/dns4/localhost/tcp/4001', '/ip4/51.15.0.3/tcp/1'])
      table(b, fakePeerId(random), ['/dns4/printer.local/tcp/1'])
      const fromLoopback = await ask(await node('tcp'), b)
      assert.deepEqual(fromLoopback.flat().sort(), ['/dns4/localhost/tcp/4001', '/dns4/printer.local/tcp/1', '/ip4/51.15.0.3/tcp/1'])
      await seeRequestersAt(b, multiaddr('/ip4/51.15.9.9/tcp/4001'))
      assert.deepEqual(await ask(await node('tcp'), b), [['/ip4/51.15.0.3/tcp/1']])
    })
  })

  describe('LAN addresses', () => {
    it('tells a LAN requester the addresses of its own LAN only', async () => {
      const random = seededRandom(35)
      const b = await node('tcp')
      table(b, fakePeerId(random), ['/ip4/10.0.0.7/tcp/1'])
      table(b, fakePeerId(random), ['/ip4/172.16.4.4/tcp/1'])
      table(b, fakePeerId(random), ['/ip4/192.168.7.7/tcp/1'])
      table(b, fakePeerId(random), ['/ip4/51.15.0.4/tcp/1'])
      await seeRequestersAt(b, multiaddr('/ip4/192.168.1.5/tcp/4001'))
      const answer = await ask(await node('tcp'), b)
      assert.deepEqual(answer.flat().sort(), ['/ip4/192.168.7.7/tcp/1', '/ip4/51.15.0.4/tcp/1'])
    })
  })
})
