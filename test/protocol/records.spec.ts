import assert from 'node:assert/strict'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { MAX_RECORD_SIZE } from '../../src/constants.js'
import { kadDiscovery } from '../../src/index.js'
import { toPbPeer } from '../../src/protocol/convert.js'
import { Message } from '../../src/protocol/pb/message.js'
import { VERIFIED_RECORDS_CACHE_SIZE, VerifiedRecords, verifyPeerRecord } from '../../src/protocol/records.js'
import { keyOf } from '../../src/table/key.js'
import { peerInfoOf, waitFor } from '../utils/libp2p.js'
import { answerByHand, protocolService, useNodes } from './utils.js'
import type { ProtocolService, ProtocolServiceInit } from './utils.js'
import type { TestNode } from '../utils/libp2p.js'
import type { PeerId, PrivateKey } from '@libp2p/interface'

interface Services extends Record<string, unknown> { discovery: ProtocolService }

const target = new Uint8Array(32).fill(5)

/** A signed peer record of `key`'s peer (or, with `as`, naming another peer) at `addrs`. */
async function signedRecord (key: PrivateKey, addrs: string[], seq: bigint, as?: PeerId): Promise<Uint8Array<ArrayBuffer>> {
  const record = new PeerRecord({ peerId: as ?? peerIdFromPrivateKey(key), multiaddrs: addrs.map(a => multiaddr(a)), seqNumber: seq })
  return new Uint8Array((await RecordEnvelope.seal(record, key)).marshal())
}

describe('signed peer records', () => {
  describe('verifyPeerRecord', () => {
    it('opens a record its peer signed: its seq and addresses', async () => {
      const key = await generateKeyPair('Ed25519')
      const verified = await verifyPeerRecord(await signedRecord(key, ['/ip4/51.15.0.1/tcp/1'], 7n), peerIdFromPrivateKey(key))
      assert.notEqual(typeof verified, 'string')
      assert.equal(typeof verified !== 'string' && verified.seq, 7n)
      assert.deepEqual(typeof verified !== 'string' && verified.multiaddrs.map(String), ['/ip4/51.15.0.1/tcp/1'])
    })

    it('refuses forged, mismatched, undecodable and oversized records, saying why', async () => {
      const key = await generateKeyPair('Ed25519')
      const other = await generateKeyPair('Ed25519')
      const id = peerIdFromPrivateKey(key)
      const good = await signedRecord(key, ['/ip4/51.15.0.1/tcp/1'], 1n)
      const forged = good.slice()
      forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 0xff
      assert.equal(await verifyPeerRecord(forged, id), 'bad-signature')
      // signed by another key, naming our peer or the signer
      assert.equal(await verifyPeerRecord(await signedRecord(other, ['/ip4/51.15.0.1/tcp/1'], 1n, id), id), 'wrong-signer')
      assert.equal(await verifyPeerRecord(await signedRecord(other, ['/ip4/51.15.0.1/tcp/1'], 1n), id), 'wrong-signer')
      assert.equal(await verifyPeerRecord(Uint8Array.of(1, 2, 3), id), 'undecodable')
      assert.equal(await verifyPeerRecord(new Uint8Array(MAX_RECORD_SIZE + 1), id), 'oversized')
    })
  })

  describe('VerifiedRecords', () => {
    it('gives the same outcome from memory, and a remembered record only for the peer it names', async () => {
      const key = await generateKeyPair('Ed25519')
      const other = await generateKeyPair('Ed25519')
      const id = peerIdFromPrivateKey(key)
      const bytes = await signedRecord(key, ['/ip4/51.15.0.1/tcp/1', '/ip4/51.15.0.1/udp/1/quic-v1'], 3n)
      const verified = new VerifiedRecords()
      for (let i = 0; i < 2; i++) {
        const result = await verified.verify(bytes, id)
        assert.ok(typeof result !== 'string', `read ${i + 1}: ${String(result)}`)
        assert.equal(result.seq, 3n)
        assert.deepEqual(result.multiaddrs.map(String), ['/ip4/51.15.0.1/tcp/1', '/ip4/51.15.0.1/udp/1/quic-v1'])
      }
      assert.equal(verified.size, 1)
      // the same genuine bytes relayed in another node's entry
      assert.equal(await verified.verify(bytes, peerIdFromPrivateKey(other)), 'wrong-signer')
      // and the other way round: refused for the wrong entry first, then taken for its own
      const fresh = new VerifiedRecords()
      assert.equal(await fresh.verify(bytes, peerIdFromPrivateKey(other)), 'wrong-signer')
      assert.equal(typeof await fresh.verify(bytes, id), 'object')
    })

    it('remembers refusals, and forgets the least recently used past its size', async () => {
      const key = await generateKeyPair('Ed25519')
      const id = peerIdFromPrivateKey(key)
      const forged = await signedRecord(key, ['/ip4/51.15.0.1/tcp/1'], 1n)
      forged[forged.length - 1] = (forged[forged.length - 1] as number) ^ 0xff
      const verified = new VerifiedRecords()
      assert.equal(await verified.verify(forged, id), 'bad-signature')
      assert.equal(await verified.verify(forged, id), 'bad-signature')
      assert.equal(await verified.verify(Uint8Array.of(1, 2, 3), id), 'undecodable')
      assert.equal(await verified.verify(new Uint8Array(MAX_RECORD_SIZE + 1), id), 'oversized')
      assert.equal(verified.size, 2, 'an oversized record is refused before it is hashed')
      for (let i = 0; i < VERIFIED_RECORDS_CACHE_SIZE + 5; i++) {
        assert.equal(await verified.verify(Uint8Array.of(9, i >> 8, i & 0xff), id), 'undecodable')
      }
      assert.equal(verified.size, VERIFIED_RECORDS_CACHE_SIZE)
    })
  })

  describe('over the wire', () => {
    const nodes = useNodes()

    async function node (init: ProtocolServiceInit = {}): Promise<TestNode<Services>> {
      return nodes.create<Services>({ services: { discovery: protocolService(init) } })
    }

    it("hands out the record the peer store holds, the peer's own from identify, and the receiver verifies it", async () => {
      const a = await node()
      const c = await node()
      const b = await node()
      // c runs identify with a: its peer store now holds a's record, signed by a
      await c.dial(a.getMultiaddrs())
      await waitFor(async () => (await c.peerStore.get(a.peerId).catch(() => undefined))?.peerRecordEnvelope != null, "a's record at c")
      const held = (await c.peerStore.get(a.peerId)).peerRecordEnvelope as Uint8Array
      c.services.discovery.table.addFoundNode(peerInfoOf(a))

      const stream = await b.dialProtocol(c.getMultiaddrs(), '/kad-discovery/1.0.0')
      const pb = pbStream(stream)
      await pb.write({ type: Message.Type.FIND_NODE, target, peers: [] }, Message)
      const answer = await pb.read(Message)
      await stream.close()
      assert.deepEqual(answer.peers[0]?.record, held, 'the bytes identify stored, not a record c made')
      const opened = await verifyPeerRecord(answer.peers[0]?.record ?? new Uint8Array(0), a.peerId)
      assert.notEqual(typeof opened, 'string', 'signed by a itself')

      const found = await b.services.discovery.client.findNode(peerInfoOf(c), target)
      assert.equal(found[0]?.id.toString(), a.peerId.toString())
      assert.equal(found[0]?.recordSeq, typeof opened !== 'string' ? opened.seq : undefined)
      assert.deepEqual(found[0]?.multiaddrs.map(String), peerInfoOf(a).multiaddrs.map(String))
      assert.equal(b.services.discovery.client.stats.recordVerified, 1)
    })

    it('takes records from the peer store\'s updates, reading the store for none of them', async () => {
      const a = await node()
      const c = await node()
      const b = await node()
      let reads = 0
      const get = c.peerStore.get.bind(c.peerStore)
      c.peerStore.get = async (peer, ...rest) => {
        if (peer.equals(a.peerId)) {
          reads++
        }
        return get(peer, ...rest)
      }
      // identify stores a's record at c, and the peer store reports the update
      await c.dial(a.getMultiaddrs())
      await waitFor(async () => (await get(a.peerId).catch(() => undefined))?.peerRecordEnvelope != null, "a's record at c")
      const held = (await get(a.peerId)).peerRecordEnvelope as Uint8Array
      c.services.discovery.table.addFoundNode(peerInfoOf(a))
      const readsBefore = reads

      const stream = await b.dialProtocol(c.getMultiaddrs(), '/kad-discovery/1.0.0')
      const pb = pbStream(stream)
      await pb.write({ type: Message.Type.FIND_NODE, target, peers: [] }, Message)
      const answer = await pb.read(Message)
      await stream.close()
      assert.deepEqual(answer.peers[0]?.record, held)
      assert.equal(reads, readsBefore, "the answer read no record of a's from the store")
    })

    it('answers at once without the records whose peer-store reads hang, and with them once read', async () => {
      const a = await node()
      const c = await node()
      const b = await node()
      await c.dial(a.getMultiaddrs())
      await waitFor(async () => (await c.peerStore.get(a.peerId).catch(() => undefined))?.peerRecordEnvelope != null, "a's record at c")
      // a fresh server, whose cache never saw an update: every record is a read, and reads hang
      await c.services.discovery.stop()
      const get = c.peerStore.get.bind(c.peerStore)
      let release: () => void = () => {}
      const hold = new Promise<void>(resolve => { release = resolve })
      c.peerStore.get = async (...args) => { await hold; return get(...args) }
      await c.services.discovery.start()
      c.services.discovery.table.addFoundNode(peerInfoOf(a))

      const started = Date.now()
      const first = await b.services.discovery.client.findNode(peerInfoOf(c), target)
      assert.ok(Date.now() - started < 1500, `answered in ${Date.now() - started} ms`)
      assert.equal(first[0]?.id.toString(), a.peerId.toString())
      assert.equal(first[0]?.recordSeq, undefined, 'no record: its read had not ended')
      release()
      await waitFor(async () => (await b.services.discovery.client.findNode(peerInfoOf(c), target))[0]?.recordSeq != null, 'the record once read')
    })

    /** A liar answering every FIND_NODE with `peers`. */
    async function liar (peers: Message.Peer[]): Promise<TestNode> {
      const l = await nodes.create()
      await answerByHand(l, async (stream) => {
        await pbStream(stream).write({ type: Message.Type.NODES, peers }, Message)
        await stream.close()
      })
      return l
    }

    it('drops an entry with a forged or mismatched record, refuses a replayed one, and counts each against the sender', async () => {
      const keys = await Promise.all([0, 1, 2, 3, 4].map(async () => generateKeyPair('Ed25519')))
      const [forgedKey, victimKey, thiefKey, replayKey, honestKey] = keys as [PrivateKey, PrivateKey, PrivateKey, PrivateKey, PrivateKey]
      const forged = await signedRecord(forgedKey, ['/ip4/51.15.0.1/tcp/1'], 5n)
      forged[forged.length - 3] = (forged[forged.length - 3] as number) ^ 1
      const victim = peerIdFromPrivateKey(victimKey)
      const replayed = peerIdFromPrivateKey(replayKey)
      const honest = peerIdFromPrivateKey(honestKey)
      const l = await liar([
        toPbPeer(peerIdFromPrivateKey(forgedKey), [multiaddr('/ip4/51.15.0.1/tcp/1')], forged),
        toPbPeer(victim, [multiaddr('/ip4/51.15.0.2/tcp/1')], await signedRecord(thiefKey, ['/ip4/51.15.0.2/tcp/1'], 5n, victim)),
        toPbPeer(replayed, [multiaddr('/ip4/51.15.0.3/tcp/1')], await signedRecord(replayKey, ['/ip4/51.15.0.3/tcp/1'], 3n)),
        toPbPeer(honest, [multiaddr('/ip4/51.15.0.9/tcp/1')], await signedRecord(honestKey, ['/ip4/51.15.0.4/tcp/1'], 9n))
      ])
      // we hold seq 4 for the replayed node: its seq 3 is a replay
      const a = await node({ client: { recordSeqOf: peer => peer.equals(replayed) ? 4n : undefined } })
      const refused: string[] = []
      const found = await a.services.discovery.client.findNode(peerInfoOf(l), target, { onRefusedRecord: reason => { refused.push(reason) } })
      // the forged and the mismatched record are reported, so the lookup charges the sender
      assert.deepEqual(refused.sort(), ['bad-signature', 'wrong-signer'])
      // the replayed entry is left as plain hearsay (no recordSeq): it names a node we hold,
      // which hearsay never re-addresses
      assert.deepEqual(found.map(p => p.id.toString()), [replayed.toString(), honest.toString()])
      assert.equal(found[0]?.recordSeq, undefined)
      assert.deepEqual(found[1]?.multiaddrs.map(String), ['/ip4/51.15.0.4/tcp/1'], 'the signed address, not the listed one')
      assert.equal(found[1]?.recordSeq, 9n)
      const stats = a.services.discovery.client.stats
      assert.equal(stats['recordRefused.bad-signature'], 1)
      assert.equal(stats['recordRefused.wrong-signer'], 1)
      assert.equal(stats['recordRefused.stale'], 1)
    })

    it('charges a findnode failure to the sender of an answer with a forged record', async () => {
      const key = await generateKeyPair('Ed25519')
      const forged = await signedRecord(key, ['/ip4/51.15.0.1/tcp/1'], 5n)
      forged[forged.length - 3] = (forged[forged.length - 3] as number) ^ 1
      // beside an honest entry, so the answer is not empty (an empty one counts anyway)
      const honest = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      const l = await liar([
        toPbPeer(peerIdFromPrivateKey(key), [multiaddr('/ip4/51.15.0.1/tcp/1')], forged),
        toPbPeer(honest, [multiaddr('/ip4/51.15.0.2/tcp/1')])
      ])
      const a = await nodes.create({ services: { discovery: kadDiscovery({ autoDial: { enabled: false } }) } })
      const internals = a.services.discovery as unknown as {
        lookups: { findnode(node: object, target: Uint8Array, options: object): Promise<unknown>, drain(): Promise<void> }
        db: { findFails(id: PeerId): Promise<number> }
      }
      await internals.lookups.findnode({ id: l.peerId, key: keyOf(l.peerId), multiaddrs: l.getMultiaddrs() }, target, {})
      await internals.lookups.drain()
      assert.equal(await internals.db.findFails(l.peerId), 1)
    })

    it('with requireSignedRecords, keeps only entries with a verified record, at its addresses', async () => {
      const key = await generateKeyPair('Ed25519')
      const signedPeer = peerIdFromPrivateKey(key)
      const unsigned = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
      const peers = [
        toPbPeer(unsigned, [multiaddr('/ip4/51.15.0.5/tcp/1')]),
        toPbPeer(signedPeer, [multiaddr('/ip4/51.15.0.6/tcp/1')], await signedRecord(key, ['/ip4/51.15.0.7/tcp/1', '/ip4/127.0.0.1/tcp/1'], 1n))
      ]
      const l = await liar(peers)
      const strict = await node({ client: { requireSignedRecords: true } })
      const found = await strict.services.discovery.client.findNode(peerInfoOf(l), target)
      assert.deepEqual(found.map(p => p.id.toString()), [signedPeer.toString()])
      // the signed loopback address still obeys the relay rules (the sender has no IP)
      assert.deepEqual(found[0]?.multiaddrs.map(String), ['/ip4/51.15.0.7/tcp/1'])
      assert.equal(strict.services.discovery.client.stats.recordMissing, 1)

      const lenient = await node()
      const all = await lenient.services.discovery.client.findNode(peerInfoOf(l), target)
      assert.deepEqual(all.map(p => p.id.toString()), [unsigned.toString(), signedPeer.toString()])
      assert.equal(all[0]?.recordSeq, undefined)
    })
  })
})
