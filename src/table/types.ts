import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * A source of time in milliseconds. The table never reads a clock of its own, so tests
 * drive it with a fake one.
 */
export type Clock = () => number

/**
 * A source of randomness. The table never calls `Math.random()`: the service passes a
 * cryptographic source, tests a seeded one.
 */
export interface RandomSource {
  /** A uniform integer in `[0, n)`; `n` is a positive integer. */
  int(n: number): number
  /** `n` uniform random bytes. */
  bytes(n: number): Uint8Array
}

/**
 * A node as the table holds it. The table hands out copies (see `snapshotNode`), so a
 * caller can never change an entry behind the table's back.
 */
export interface TableNode {
  /** The node's peer id. */
  readonly id: PeerId
  /** `sha256(id.toMultihash().bytes)`: its place in the keyspace. */
  readonly key: Uint8Array
  /** Where it can be reached; never empty. */
  addrs: Multiaddr[]
  /** When it entered the table (clock time, ms); geth `addedAt`. */
  addedAt: number
  /** How many pings it has answered since it entered the table; geth `livenessChecks`. */
  livenessChecks: number
  /**
   * The sequence number of the newest verified signed peer record its addresses came
   * from, if any (geth keeps an ENR's seq the same way): only a verified record with a
   * higher one may re-address the entry (`Table.updateFromRecord`).
   */
  recordSeq?: bigint
}

/** A node as the table is given it: an id and its multiaddrs. */
export interface NodeInfo {
  /** The node's peer id. */
  id: PeerId
  /** Its multiaddrs. */
  multiaddrs: Multiaddr[]
  /**
   * Set only when `multiaddrs` are those of a signed peer record the protocol client
   * verified (signature, signer, payload type): that record's sequence number.
   */
  recordSeq?: bigint
}

/**
 * What happened to a node offered to the table. Normal outcomes are values, never errors.
 */
export enum AddResult {
  /** It entered a bucket. */
  Added = 'added',
  /** It was already in its bucket and moved to the front (inbound only). */
  Bumped = 'bumped',
  /** It was already in its bucket; hearsay leaves the entry as it was (found only). */
  Present = 'present',
  /** It was already in its bucket and took the addresses of a newer verified record. */
  Readdressed = 'readdressed',
  /** Its bucket is full: it was kept on the replacement list. */
  Replacement = 'replacement',
  /** An IP subnet limit refused it; it was kept on the replacement list. */
  IpLimit = 'ip-limit',
  /** It is the local node. */
  Self = 'self',
  /** It has no multiaddr, so nobody could reach it. */
  NoAddress = 'no-address',
  /** An inbound add before the first refresh finished (geth's `initDone` rule). */
  NotReady = 'not-ready'
}

/** Why a node left the table. */
export enum RemoveReason {
  /** It did not answer a revalidation ping and a replacement took its place. */
  Replaced = 'replaced',
  /** It did not answer a revalidation ping and no replacement was there. */
  Dead = 'dead',
  /** Too many consecutive failed FIND_NODE requests. */
  FindnodeFailures = 'findnode-failures',
  /** Removed on request. */
  Deleted = 'deleted'
}

/** A read-only view of one bucket. */
export interface BucketSnapshot {
  /** The bucket's index, `0 … nBuckets - 1`. */
  index: number
  /** Its entries, most recently live first. */
  entries: TableNode[]
  /** Its replacement list, newest first. */
  replacements: TableNode[]
}

/** How a `Table` is built: its owner, its clock and randomness, and geth's limits. */
export interface TableInit {
  /** The local node: never added, and the origin of every distance. */
  self: PeerId
  /** Milliseconds, injected. */
  clock: Clock
  /** Randomness, injected. */
  random: RandomSource
  /** Entries per bucket (k). @default 16 */
  bucketSize?: number
  /** Buckets; log distances `≤ 256 - nBuckets` share bucket 0. @default 17 */
  nBuckets?: number
  /** Replacements per bucket. @default 10 */
  maxReplacements?: number
  /** Entries of one subnet per bucket. @default 2 */
  bucketIpLimit?: number
  /** IPv4 prefix length of a bucket subnet. @default 24 */
  bucketSubnet?: number
  /** Entries of one subnet per table. @default 10 */
  tableIpLimit?: number
  /** IPv4 prefix length of a table subnet. @default 24 */
  tableSubnet?: number
  /** Whether LAN and loopback addresses are exempt from the IP limits. @default true */
  allowLan?: boolean
  /** Called when a node enters a bucket (geth `nodeAddedHook`). */
  onNodeAdded?(node: TableNode): void
  /** Called when a node leaves a bucket. */
  onNodeRemoved?(node: TableNode, reason: RemoveReason): void
  /** Called when a node's addresses change (an inbound contact or a newer record re-addressed it). */
  onNodeUpdated?(node: TableNode): void
}

/** Options for `Table.closest`. */
export interface ClosestOptions {
  /** Prefer nodes that have answered a revalidation ping (geth `findnodeByID`). */
  preferLive?: boolean
}
