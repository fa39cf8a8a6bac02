import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { sha256 } from '@noble/hashes/sha2.js'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { MAX_RECORD_SIZE } from '../constants.js'
import type { Libp2pEvents, PeerId, PeerStore, PeerUpdate, TypedEventTarget } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Why a signed peer record in a NODES entry was refused; each is a client counter
 * `recordRefused.<reason>`, and the entry it came with is dropped whole.
 */
export type RecordRefusal =
  /** Over `MAX_RECORD_SIZE` bytes. */
  | 'oversized'
  /** Not an Envelope, or its payload not a PeerRecord. */
  | 'undecodable'
  /** The signature does not verify for libp2p's peer record domain (forged or altered). */
  | 'bad-signature'
  /** The payload type is not libp2p's peer record one. */
  | 'wrong-type'
  /** Signed by another key than the entry's peer id, or naming another peer. */
  | 'wrong-signer'
  /** Older than the record we already hold for that node: a replay. */
  | 'stale'

/** A record that passed `verifyPeerRecord`: the addresses its peer signed. */
export interface VerifiedRecord {
  /** The record's sequence number: higher is newer. */
  seq: bigint
  /** The addresses the peer signed. */
  multiaddrs: Multiaddr[]
}

/**
 * Opens a marshalled signed peer record (a libp2p Envelope) that came with the NODES
 * entry of `peer`, and checks it the way libp2p's peer store does before it takes one:
 * the signature is valid for the peer record domain (`RecordEnvelope.openAndCertify`),
 * the payload type is the peer record codec, and both the signing key and the record
 * name `peer`. Returns the record, or why it was refused; never throws.
 */
export async function verifyPeerRecord (bytes: Uint8Array, peer: PeerId): Promise<VerifiedRecord | RecordRefusal> {
  if (bytes.byteLength > MAX_RECORD_SIZE) {
    return 'oversized'
  }
  let envelope: RecordEnvelope
  try {
    envelope = await RecordEnvelope.openAndCertify(bytes, PeerRecord.DOMAIN)
  } catch (err: any) {
    return err?.name === 'InvalidSignatureError' ? 'bad-signature' : 'undecodable'
  }
  if (!uint8ArrayEquals(envelope.payloadType, PeerRecord.CODEC)) {
    return 'wrong-type'
  }
  let signer: PeerId
  let record: PeerRecord
  try {
    signer = peerIdFromPublicKey(envelope.publicKey)
    record = PeerRecord.createFromProtobuf(envelope.payload)
  } catch {
    return 'undecodable'
  }
  if (!signer.equals(peer) || !record.peerId.equals(peer)) {
    return 'wrong-signer'
  }
  return { seq: record.seqNumber, multiaddrs: record.multiaddrs }
}

/** How many verification results `VerifiedRecords` remembers. */
export const VERIFIED_RECORDS_CACHE_SIZE = 256

/**
 * `verifyPeerRecord` with a memory of its last results, keyed by a hash of the record's
 * bytes: one node's record reaches us in many answers (every peer near it relays the same
 * bytes until identify seals it a new one), and a signature check is most of what an
 * answer costs. The whole bytes are hashed, so an altered record never hits.
 *
 * It remembers outcomes, not records: a record that passed is opened again from the bytes
 * at hand (a protobuf decode, a small part of the signature check) and checked against the
 * asking entry's peer. Holding the opened records (their multiaddrs and peer ids) cost
 * about 0.9 KiB an entry, 230 KiB per node at the default size: a tenth of a node's heap
 * in the comparison bench.
 */
export class VerifiedRecords {
  // BOUNDED: ≤ VERIFIED_RECORDS_CACHE_SIZE entries, the least recently used dropped first
  private readonly outcomes = new Map<string, CachedOutcome>()

  /** How many outcomes it remembers. */
  get size (): number {
    return this.outcomes.size
  }

  /** The outcome of `verifyPeerRecord(bytes, peer)`, from memory when the same bytes came before. */
  async verify (bytes: Uint8Array, peer: PeerId): Promise<VerifiedRecord | RecordRefusal> {
    if (bytes.byteLength > MAX_RECORD_SIZE) {
      return 'oversized'
    }
    const key = uint8ArrayToString(sha256(bytes), 'base64')
    const known = this.outcomes.get(key)
    if (known != null) {
      this.outcomes.delete(key)
      this.outcomes.set(key, known)
      return known === 'signed' ? openSigned(bytes, peer) : known
    }
    const result = await verifyPeerRecord(bytes, peer)
    if (result !== 'wrong-signer') {
      this.outcomes.set(key, typeof result === 'string' ? result : 'signed')
    }
    for (const oldest of this.outcomes.keys()) {
      if (this.outcomes.size <= VERIFIED_RECORDS_CACHE_SIZE) {
        break
      }
      this.outcomes.delete(oldest)
    }
    return result
  }
}

/**
 * What `VerifiedRecords` remembers of some bytes: `signed` when they passed (a valid
 * signature by the peer the record names, whoever relayed it), else why they were refused.
 * `wrong-signer` is never remembered: whether it holds depends on the entry that carried
 * the bytes, not on the bytes alone.
 */
type CachedOutcome = 'signed' | Exclude<RecordRefusal, 'wrong-signer'>

/**
 * Opens bytes that once passed `verifyPeerRecord`, without checking the signature again:
 * the record, when it names `peer`, or `wrong-signer` (the record is genuine, but another
 * node's).
 */
function openSigned (bytes: Uint8Array, peer: PeerId): VerifiedRecord | RecordRefusal {
  const record = unverifiedRecord(bytes)
  if (record == null) {
    return 'undecodable'
  }
  return record.peerId.equals(peer) ? { seq: record.seqNumber, multiaddrs: record.multiaddrs } : 'wrong-signer'
}

/** The peer record marshalled bytes hold, its signature unchecked; undefined when it does not decode. */
function unverifiedRecord (bytes: Uint8Array): PeerRecord | undefined {
  try {
    return PeerRecord.createFromProtobuf(RecordEnvelope.createFromProtobuf(bytes).payload)
  } catch {
    return undefined
  }
}

/**
 * The sequence number a marshalled record claims, read without checking its signature
 * (cheap, unlike the check); undefined when it does not decode. Good only for deciding that
 * a record could not be used anyway: it is no newer than one already verified.
 */
export function claimedRecordSeq (bytes: Uint8Array): bigint | undefined {
  if (bytes.byteLength > MAX_RECORD_SIZE) {
    return undefined
  }
  return unverifiedRecord(bytes)?.seqNumber
}

/** How long a peer's record is reused before the peer store is read again. */
export const RECORDS_TTL = 10_000
/** How many peers' records (or their absence) are remembered. */
export const RECORDS_CACHE_SIZE = 4096

interface CachedRecord {
  bytes?: Uint8Array<ArrayBuffer>
  at: number
}

/**
 * The signed peer records the server puts in its NODES answers: what libp2p's peer store
 * holds for a peer (`peerRecordEnvelope`, which identify writes after verifying it), never
 * a record of our making, and only one of at most `MAX_RECORD_SIZE` bytes. The peer store
 * reports every change of a peer (`peer:update`, carrying the peer as now stored), so a
 * record is taken from those events as it changes (a node that moved is never handed out
 * with its old record), and the store is read only for a peer no event has named within
 * the TTL. A NODES answer names 16 peers, most never connected to (the store has nothing
 * for them), so each read, found or not, is reused for the TTL; reads of one peer share.
 */
export class PeerRecords {
  private readonly peerStore: PeerStore
  private readonly events?: TypedEventTarget<Libp2pEvents>
  private readonly now: () => number
  // BOUNDED: ≤ RECORDS_CACHE_SIZE entries; insertion order is age, the oldest goes first
  private readonly cache = new Map<string, CachedRecord>()
  // BOUNDED: one read per peer at a time, each removed when it ends
  private readonly reading = new Map<string, Promise<Uint8Array<ArrayBuffer> | undefined>>()
  private readonly onUpdate = (evt: CustomEvent<PeerUpdate>): void => {
    this.remember(cacheKey(evt.detail.peer.id), evt.detail.peer.peerRecordEnvelope)
  }

  constructor (peerStore: PeerStore, events?: TypedEventTarget<Libp2pEvents>, now: () => number = Date.now) {
    this.peerStore = peerStore
    this.events = events
    this.now = now
  }

  /** Starts following the peer store's updates. */
  start (): void {
    this.events?.addEventListener('peer:update', this.onUpdate)
  }

  /** Stops listening and forgets every cached record. */
  stop (): void {
    this.events?.removeEventListener('peer:update', this.onUpdate)
    this.cache.clear()
  }

  /** The record held for `peer` without reading the store, if one was learned within the TTL. */
  cached (peer: PeerId): { bytes?: Uint8Array<ArrayBuffer> } | undefined {
    const cached = this.cache.get(cacheKey(peer))
    return cached != null && this.now() - cached.at < RECORDS_TTL ? cached : undefined
  }

  /** The marshalled record the peer store holds for `peer`, if one fits in an answer. */
  async of (peer: PeerId): Promise<Uint8Array<ArrayBuffer> | undefined> {
    const cached = this.cached(peer)
    if (cached != null) {
      return cached.bytes
    }
    const key = cacheKey(peer)
    let read = this.reading.get(key)
    if (read == null) {
      read = this.read(peer, key).finally(() => { this.reading.delete(key) })
      this.reading.set(key, read)
    }
    return read
  }

  private async read (peer: PeerId, key: string): Promise<Uint8Array<ArrayBuffer> | undefined> {
    const started = this.now()
    let stored: Uint8Array | undefined
    try {
      stored = (await this.peerStore.get(peer)).peerRecordEnvelope
    } catch (err: any) {
      if (err?.name !== 'NotFoundError') {
        throw err
      }
    }
    // an update that came while the store was read is newer than what the read saw
    const updated = this.cache.get(key)
    if (updated != null && updated.at >= started) {
      return updated.bytes
    }
    return this.remember(key, stored)
  }

  private remember (key: string, stored: Uint8Array | undefined): Uint8Array<ArrayBuffer> | undefined {
    // a copy: what is cached must not change if the peer store reuses its buffer
    const bytes = stored != null && stored.byteLength <= MAX_RECORD_SIZE ? new Uint8Array(stored) : undefined
    this.cache.delete(key)
    if (this.cache.size >= RECORDS_CACHE_SIZE) {
      const oldest = this.cache.keys().next()
      if (oldest.done !== true) {
        this.cache.delete(oldest.value)
      }
    }
    this.cache.set(key, { bytes, at: this.now() })
    return bytes
  }
}

function cacheKey (peer: PeerId): string {
  return uint8ArrayToString(peer.toMultihash().bytes, 'base64')
}
