import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import {
  checkRequest, checkResponse, decodeMessage, fromPbPeer, multiaddrFromBytes, peerIdFromBytes, reasonOf, toPbPeer
} from '../../src/protocol/convert.js'
import { Message } from '../../src/protocol/pb/message.js'
import { seededRandom } from '../../src/table/random.js'
import { fakePeerId, realPeer } from '../utils/peers.js'

/** Runs `fn` and returns the `reason` of the `InvalidMessageError` it throws. */
function reasonThrown (fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return reasonOf(err)
  }
  assert.fail('expected a protocol violation')
}

describe('convert', () => {
  const random = seededRandom(31)

  describe('peers', () => {
    it('round-trips a peer id and its multiaddrs through the wire form', async () => {
      const { peerId } = await realPeer()
      const addrs = [multiaddr('/ip4/51.15.0.1/tcp/4001'), multiaddr('/dns4/example.org/tcp/443/wss'), multiaddr('/memory/x')]
      const info = fromPbPeer(Message.Peer.decode(Message.Peer.encode(toPbPeer(peerId, addrs))))
      assert(info.id.equals(peerId))
      assert.deepEqual(info.multiaddrs.map(String), addrs.map(String))
    })

    it('decodes RSA-style (sha256) peer ids as well as identity ones', () => {
      const sha256Id = Uint8Array.from([0x12, 0x20, ...new Uint8Array(32).fill(7)])
      assert.equal(peerIdFromBytes(sha256Id).type, 'RSA')
      assert.equal(peerIdFromBytes(fakePeerId(random).toMultihash().bytes).type, 'Ed25519')
    })

    it('calls bytes that are no peer id an invalid-peer-id', () => {
      assert.equal(reasonThrown(() => peerIdFromBytes(Uint8Array.from([1, 2, 3]))), 'invalid-peer-id')
      assert.equal(reasonThrown(() => peerIdFromBytes(new Uint8Array(0))), 'invalid-peer-id')
    })

    it('calls bytes that are no multiaddr, or an empty one, an invalid-multiaddr', () => {
      assert.equal(reasonThrown(() => multiaddrFromBytes(Uint8Array.from([0xff, 0xff]))), 'invalid-multiaddr')
      assert.equal(reasonThrown(() => multiaddrFromBytes(Uint8Array.from([4, 1, 2, 3]))), 'invalid-multiaddr')
      assert.equal(reasonThrown(() => multiaddrFromBytes(new Uint8Array(0))), 'invalid-multiaddr')
    })
  })

  describe('decodeMessage', () => {
    it('names the rule a frame breaks', () => {
      const peer = toPbPeer(fakePeerId(random), [multiaddr('/ip4/51.15.0.1/tcp/1')])
      const nodes = (n: number): Uint8Array => Message.encode({ type: Message.Type.NODES, peers: Array.from({ length: n }, () => peer) })
      assert.equal(reasonThrown(() => decodeMessage(Uint8Array.from([0xff, 0xff, 0xff]), { maxPeers: 16 })), 'undecodable')
      assert.equal(reasonThrown(() => decodeMessage(Uint8Array.from([0x08, 77]), { maxPeers: 16 })), 'unknown-type')
      assert.equal(reasonThrown(() => decodeMessage(nodes(17), { maxPeers: 16 })), 'too-many-peers')
      assert.equal(decodeMessage(nodes(16), { maxPeers: 16 }).peers.length, 16)
      const crowded = toPbPeer(fakePeerId(random), Array.from({ length: 3 }, () => multiaddr('/ip4/51.15.0.1/tcp/1')))
      const bytes = Message.encode({ type: Message.Type.NODES, peers: [crowded] })
      assert.equal(reasonThrown(() => decodeMessage(bytes, { maxPeers: 16, maxAddrs: 2 })), 'too-many-addrs')
    })
  })

  describe('checkRequest and checkResponse', () => {
    it('takes PING and FIND_NODE with a 32-byte target as requests, nothing else', () => {
      checkRequest({ type: Message.Type.PING, peers: [] })
      checkRequest({ type: Message.Type.FIND_NODE, target: new Uint8Array(32), peers: [] })
      assert.equal(reasonThrown(() => checkRequest({ type: Message.Type.FIND_NODE, peers: [] })), 'bad-target')
      assert.equal(reasonThrown(() => checkRequest({ type: Message.Type.FIND_NODE, target: new Uint8Array(33), peers: [] })), 'bad-target')
      assert.equal(reasonThrown(() => checkRequest({ type: Message.Type.NODES, peers: [] })), 'unexpected-type')
      assert.equal(reasonThrown(() => checkRequest({ type: Message.Type.UNSPECIFIED, peers: [] })), 'unknown-type')
    })

    it('takes PONG for PING and NODES for FIND_NODE, and throws UnexpectedResponseError otherwise', () => {
      checkResponse(Message.Type.PING, { type: Message.Type.PONG, peers: [] })
      checkResponse(Message.Type.FIND_NODE, { type: Message.Type.NODES, peers: [] })
      assert.throws(() => { checkResponse(Message.Type.FIND_NODE, { type: Message.Type.PONG, peers: [] }) }, { name: 'UnexpectedResponseError' })
      assert.equal(reasonThrown(() => checkResponse(Message.Type.PING, { type: Message.Type.UNSPECIFIED, peers: [] })), 'unknown-type')
    })
  })
})
