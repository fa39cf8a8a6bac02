import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { Key } from 'interface-datastore'
import { sample } from '../table/random.js'
import { NodeRecord } from './pb/record.js'
import type { RandomSource } from '../table/types.js'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Everything the node database writes lives under this prefix, so a schema reset can clear
 * it without touching the keys of the rest of the libp2p node.
 */
export const PREFIX = '/kad-discovery/'

/** Node records: `/kad-discovery/nodes/<peerId>`. The trailing slash keeps a query off sibling prefixes. */
export const NODES_PREFIX = `${PREFIX}nodes/`

/** The schema version key (geth `dbVersionKey`). */
export const VERSION_KEY = new Key(`${PREFIX}version`)

/**
 * The record layout's version (geth `dbVersion`). Bump it when `record.proto` changes in a
 * way old records cannot be read as: a mismatch clears our prefix on `open`.
 */
export const SCHEMA_VERSION = 1

/**
 * Addresses kept per record. A table node's addresses come from a NODES answer (≤ 16 KiB) or
 * identify, so this is rarely reached; it caps a value's size and doubles as the decode limit.
 */
export const MAX_RECORD_ADDRS = 16

/** Why a stored record was dropped. Each value names its counter in `NodeDBStats`. */
export enum CorruptReason {
  /** The value is not a protobuf `NodeRecord`: garbage, or cut short inside a field. */
  Undecodable = 'undecodable',
  /**
   * It decodes, but is not what we write: no `firstSeen` (a value cut short at a field
   * boundary loses it, as it is encoded last), no address, or a time past 2^53 ms.
   */
  Malformed = 'malformed',
  /** The key does not end in a canonical peer id. */
  InvalidPeerId = 'invalidPeerId',
  /** An address is not a valid multiaddr. */
  InvalidMultiaddr = 'invalidMultiaddr'
}

/** What the node database knows of a node, times in ms since the epoch (0 = never). */
export interface NodeTimes {
  /** When we last sent it a ping. */
  lastPingSent: number
  /** When it last answered a ping. */
  lastPongReceived: number
  /** Consecutive failed FIND_NODE requests. */
  findFails: number
}

/** A decoded record: its times, its first write, and its addresses still as bytes. */
export interface NodeFields extends NodeTimes {
  /** Multiaddrs as bytes; parsed only for nodes that are handed out. */
  addrs: Uint8Array[]
  /** When the record was first written. */
  firstSeen: number
}

/** The record key of a node. */
export function nodeKey (id: PeerId | string): Key {
  return new Key(NODES_PREFIX + id.toString())
}

/** The peer id part of a record key, unparsed. */
export function keyName (key: Key): string {
  return key.toString().slice(NODES_PREFIX.length)
}

/** A record's value. Times are floored to whole ms, addresses capped at `MAX_RECORD_ADDRS`. */
export function encodeFields (fields: NodeFields): Uint8Array {
  return NodeRecord.encode({
    addrs: fields.addrs.slice(0, MAX_RECORD_ADDRS) as Array<Uint8Array<ArrayBuffer>>,
    lastPingSent: toUint64(fields.lastPingSent),
    lastPongReceived: toUint64(fields.lastPongReceived),
    findFails: fields.findFails,
    // encoded last by protons (field order), which is what lets decodeFields spot a cut
    firstSeen: toUint64(fields.firstSeen)
  })
}

/**
 * Decodes a value without looking at its key or parsing its addresses: the cheap first
 * check, run on every record a scan reads. Returns why it is corrupt rather than throwing,
 * so a scan can count and go on.
 */
export function decodeFields (value: Uint8Array): NodeFields | CorruptReason {
  let record: NodeRecord
  try {
    record = NodeRecord.decode(value, { limits: { addrs: MAX_RECORD_ADDRS } })
  } catch {
    return CorruptReason.Undecodable
  }
  const times = [record.lastPingSent, record.lastPongReceived, record.firstSeen ?? -1n]
  if (record.firstSeen == null || record.addrs.length === 0 || times.some(t => t > MAX_TIME)) {
    return CorruptReason.Malformed
  }
  return {
    addrs: record.addrs,
    lastPingSent: Number(record.lastPingSent),
    lastPongReceived: Number(record.lastPongReceived),
    findFails: record.findFails,
    firstSeen: Number(record.firstSeen)
  }
}

/**
 * The second check, for a node about to be handed out: its key must hold a peer id in
 * canonical form (so two keys can never name one node) and every address must parse.
 */
export function toPeerInfo (name: string, fields: NodeFields): PeerInfo | CorruptReason {
  let id: PeerId
  try {
    id = peerIdFromString(name)
  } catch {
    return CorruptReason.InvalidPeerId
  }
  if (id.toString() !== name) {
    return CorruptReason.InvalidPeerId
  }
  const multiaddrs: Multiaddr[] = []
  try {
    for (const bytes of fields.addrs) {
      multiaddrs.push(multiaddr(bytes))
    }
  } catch {
    return CorruptReason.InvalidMultiaddr
  }
  return { id, multiaddrs }
}

const MAX_TIME = BigInt(Number.MAX_SAFE_INTEGER)

function toUint64 (ms: number): bigint {
  return BigInt(Math.max(0, Math.floor(ms)))
}

/** What the node database dropped, and why. Corrupt counters count detections. */
export interface NodeDBStats {
  /** Records found corrupt, all reasons together. */
  corruptRecords: number
  /** …of which did not decode (see `CorruptReason.Undecodable`). */
  undecodable: number
  /** …of which decoded but were not whole (see `CorruptReason.Malformed`). */
  malformed: number
  /** …of which had a key that is not a canonical peer id. */
  invalidPeerId: number
  /** …of which held an address that is not a multiaddr. */
  invalidMultiaddr: number
  /** Deletes of corrupt records that failed (they are found again by the next scan). */
  failedDeletes: number
  /** Records deleted by `expireNodes`. */
  expired: number
  /** In-memory values forgotten because `maxPendingNodes` was reached. */
  pendingEvicted: number
  /** Times `open` found another schema version and cleared the prefix. */
  schemaResets: number
}

/** All counters at zero. */
export function emptyStats (): NodeDBStats {
  return {
    corruptRecords: 0,
    undecodable: 0,
    malformed: 0,
    invalidPeerId: 0,
    invalidMultiaddr: 0,
    failedDeletes: 0,
    expired: 0,
    pendingEvicted: 0,
    schemaResets: 0
  }
}

/** Default bound of the in-memory times kept for nodes that have no record. */
export const MAX_PENDING_NODES = 4096

/**
 * Times reported for nodes that have no record, kept until `copyLiveNodes` or `updateNode`
 * writes one. geth writes them to disk for every node that ever answered, which would let
 * any peer grow our store; here the node updated longest ago is forgotten first.
 */
export class PendingTimes {
  // BOUNDED: ≤ max entries (NodeDBInit.maxPendingNodes, default 4096); Map order is update order
  private readonly times = new Map<string, NodeTimes>()
  private readonly max: number

  /** `max`: how many nodes to remember. */
  constructor (max: number) {
    this.max = max
  }

  /** How many nodes are remembered. */
  get size (): number {
    return this.times.size
  }

  /** The times remembered for a node. */
  get (name: string): NodeTimes | undefined {
    return this.times.get(name)
  }

  /** Changes a node's times (from zeros if unknown) and returns how many nodes were forgotten. */
  update (name: string, change: (times: NodeTimes) => void): number {
    const times = this.times.get(name) ?? { lastPingSent: 0, lastPongReceived: 0, findFails: 0 }
    change(times)
    // delete first: re-inserting moves the node to the recent end
    this.times.delete(name)
    this.times.set(name, times)
    let evicted = 0
    for (const oldest of this.times.keys()) {
      if (this.times.size <= this.max) {
        break
      }
      this.times.delete(oldest)
      evicted++
    }
    return evicted
  }

  /** Forgets a node. */
  delete (name: string): void {
    this.times.delete(name)
  }
}

/**
 * A uniform random sample of up to `size` items from a stream of unknown length, in one
 * pass, holding only the sample: Li's "Algorithm L" (ACM TOMS 20(4), 1994). It draws about
 * `size × (1 + ln(N / size))` random numbers for N items rather than one per item, which
 * matters with the production source (a `crypto.getRandomValues` call per draw).
 *
 * The caller asks `wants()` before building an item, so it can check only the items that
 * would be kept; an item that then proves unusable is simply not offered, and the next
 * one is wanted in its place, which keeps the sample uniform over the usable items.
 */
export class Reservoir<T> {
  // BOUNDED: ≤ size items
  private readonly items: T[] = []
  private readonly size: number
  private readonly random: RandomSource
  // items offered so far, the index of the next one to keep once full, and Li's W
  private offered = 0
  private next = 0
  private w = 0

  /** `size`: how many items to keep; `random`: the draws. */
  constructor (size: number, random: RandomSource) {
    this.size = size
    this.random = random
  }

  /** Whether the next offered item will be kept. */
  wants (): boolean {
    return this.size > 0 && (this.offered < this.size || this.offered === this.next)
  }

  /** Offers an item that is not wanted (`wants()` was false). */
  pass (): void {
    this.offered++
  }

  /** Offers a wanted item (`wants()` was true): it enters the sample. */
  keep (item: T): void {
    if (this.offered < this.size) {
      this.items.push(item)
      if (this.items.length === this.size) {
        this.w = Math.exp(Math.log(this.uniform()) / this.size)
        this.next = this.offered + this.skip() + 1
      }
    } else {
      this.items[this.random.int(this.size)] = item
      this.w *= Math.exp(Math.log(this.uniform()) / this.size)
      this.next = this.offered + this.skip() + 1
    }
    this.offered++
  }

  /** The sample, in random order. */
  sample (): T[] {
    return sample(this.items, this.items.length, this.random)
  }

  // how many items to pass before the next one is kept
  private skip (): number {
    return Math.floor(Math.log(this.uniform()) / Math.log(1 - this.w))
  }

  // uniform in (0, 1): never 0, whose log is -Infinity
  private uniform (): number {
    return (this.random.int(0x100000000) + 0.5) / 0x100000000
  }
}
