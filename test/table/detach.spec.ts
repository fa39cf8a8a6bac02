import assert from 'node:assert/strict'
import { peerIdFromMultihash } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { fromPbPeer, toPbPeer } from '../../src/protocol/convert.js'
import { Message } from '../../src/protocol/pb/message.js'
import { ownBytes, ownPeerId } from '../../src/table/detach.js'
import { seededRandom } from '../../src/table/random.js'
import { fakePeerId } from '../utils/peers.js'
import { testTable } from '../utils/table.js'
import type { PeerId } from '@libp2p/interface'

/** `bytes` copied into the middle of a larger buffer, as a frame's field is: a view into it. */
function viewInSlab (bytes: Uint8Array): Uint8Array {
  const slab = new Uint8Array(8192)
  slab.set(bytes, 100)
  return slab.subarray(100, 100 + bytes.byteLength)
}

/** A peer id equal to Ed25519 `id` whose multihash (identity, one-byte header fields) is a view into a larger buffer. */
function peerIdInSlab (id: PeerId): PeerId {
  const bytes = viewInSlab(id.toMultihash().bytes)
  const digest = { code: bytes[0], size: bytes[1], digest: bytes.subarray(2), bytes }
  return peerIdFromMultihash(digest as unknown as Parameters<typeof peerIdFromMultihash>[0])
}

const ownsItsBuffer = (bytes: Uint8Array): boolean => bytes.buffer.byteLength === bytes.byteLength

describe('keeping no view into a shared buffer', () => {
  const random = seededRandom(71)

  it('ownBytes copies a view and hands back bytes that own their buffer', () => {
    const whole = Uint8Array.from([1, 2, 3])
    assert.equal(ownBytes(whole), whole)
    const view = viewInSlab(whole)
    const copy = ownBytes(view)
    assert.notEqual(copy.buffer, view.buffer)
    assert.ok(ownsItsBuffer(copy))
    assert.deepEqual([...copy], [1, 2, 3])
  })

  it('ownPeerId decodes a peer id held in a view afresh, equal to it, and leaves a whole one as it is', () => {
    const id = fakePeerId(random)
    const viewed = peerIdInSlab(id)
    assert.ok(!ownsItsBuffer(viewed.toMultihash().bytes), 'the test id is a view')
    const owned = ownPeerId(viewed)
    assert.ok(owned.equals(id))
    assert.equal(owned.toString(), id.toString())
    assert.ok(ownsItsBuffer(owned.toMultihash().bytes))
    assert.equal(owned.toMultihash().digest.buffer, owned.toMultihash().bytes.buffer)
    assert.equal(ownPeerId(owned), owned)
  })

  it('the table keeps its own copy of a peer id it is given as a view', () => {
    const { table } = testTable()
    const id = peerIdInSlab(fakePeerId(random))
    table.addFoundNode({ id, multiaddrs: [multiaddr('/ip4/51.15.0.1/tcp/4001')] })
    const entry = table.nodes()[0]
    assert.ok(entry != null && entry.id.equals(id))
    assert.ok(ownsItsBuffer(entry.id.toMultihash().bytes))
  })

  it('a peer decoded from a NODES frame keeps no view into the frame', () => {
    const id = fakePeerId(random)
    const frame = viewInSlab(Message.Peer.encode(toPbPeer(id, [multiaddr('/ip4/51.15.0.1/tcp/4001'), multiaddr('/memory/x')])))
    const peer = fromPbPeer(Message.Peer.decode(frame))
    assert.ok(peer.id.equals(id))
    assert.notEqual(peer.id.toMultihash().bytes.buffer, frame.buffer)
    for (const ma of peer.multiaddrs) {
      for (const component of ma.getComponents()) {
        assert.notEqual(component.bytes?.buffer, frame.buffer, `${ma.toString()} keeps a view into the frame`)
      }
    }
  })
})
