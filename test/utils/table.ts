import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { sha256 } from '@noble/hashes/sha2.js'
import { DistinctNetSet, netAddressOf } from '../../src/table/ip-limits.js'
import { logDistance } from '../../src/table/key.js'
import { seededRandom } from '../../src/table/random.js'
import { Table } from '../../src/table/table.js'
import { tcpAddr } from './peers.js'
import type { NetLimits } from '../../src/table/ip-limits.js'
import type { RandomSource, TableInit } from '../../src/table/types.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A clock the test moves by hand. */
export interface FakeClock {
  (): number
  advance(ms: number): void
  set(ms: number): void
}

/** A fake clock starting at `start` ms. */
export function fakeClock (start = 1_700_000_000_000): FakeClock {
  let now = start
  const clock = (() => now) as FakeClock
  clock.advance = (ms: number) => { now += ms }
  clock.set = (ms: number) => { now = ms }
  return clock
}

// the multihash of an Ed25519 public key: identity code, length 36, then the protobuf key
const ED25519_MULTIHASH_PREFIX = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20]
const MAX_SEARCH = 1 << 23

/**
 * After geth's test helper `nodeAtDistance`: a peer id whose key lies at log distance
 * `distance` from `base`. Keys are hashes, so it searches: it hashes candidate multihashes
 * directly (≈1 µs each) and builds a PeerId only for the hit. Bounded: throws after 2^23
 * candidates (distances below ~236 are out of reach).
 */
export function peerAtDistance (base: Uint8Array, distance: number, random: RandomSource): PeerId {
  const multihash = new Uint8Array(ED25519_MULTIHASH_PREFIX.length + 32)
  multihash.set(ED25519_MULTIHASH_PREFIX)
  const raw = multihash.subarray(ED25519_MULTIHASH_PREFIX.length)
  raw.set(random.bytes(32))
  const exact = distance > 239
  for (let i = 0; i < MAX_SEARCH; i++) {
    // a counter in the first bytes makes every candidate distinct
    raw[0] = i & 0xff
    raw[1] = (i >> 8) & 0xff
    raw[2] = (i >> 16) & 0xff
    const d = logDistance(base, sha256(multihash))
    if (exact ? d === distance : d <= distance) {
      return peerIdFromPublicKey(publicKeyFromRaw(raw.slice()))
    }
  }
  throw new Error(`no peer at distance ${distance} after ${MAX_SEARCH} tries`)
}

/** A node for the table: a peer id and one TCP address. */
export interface TestNode {
  id: PeerId
  multiaddrs: Multiaddr[]
}

/** A node at log distance `distance` from the table's self, with `ip`. */
export function nodeAtDistance (table: Table, distance: number, ip: string, random: RandomSource): TestNode {
  return { id: peerAtDistance(table.selfKey, distance, random), multiaddrs: [tcpAddr(ip)] }
}

/** The log distance that bucket `index` of `table` holds (bucket 0: its largest). */
export function distanceOfBucket (table: Table, index: number): number {
  return table.bucketDistances(index)[1]
}

/**
 * After geth's `fillBucket`: adds nodes to bucket `index` until it is full, each with its
 * own public /24, and returns them. `count` adds fewer.
 */
export function fillBucket (table: Table, index: number, random: RandomSource, count = table.bucketSize, ipBase = 0): TestNode[] {
  const nodes: TestNode[] = []
  const distance = distanceOfBucket(table, index)
  for (let i = 0; i < count; i++) {
    const node = nodeAtDistance(table, distance, publicIP(ipBase + index * 256 + i), random)
    table.addFoundNode(node)
    nodes.push(node)
  }
  return nodes
}

/** A public IPv4 address in a /24 of its own for each `n`. */
export function publicIP (n: number): string {
  return `${51 + ((n >> 16) & 0x3f)}.${(n >> 8) & 0xff}.${n & 0xff}.1`
}

/** A table with a seeded random source and a fake clock, and everything it was built with. */
export function testTable (init: Partial<TableInit> = {}, seed = 1): { table: Table, clock: FakeClock, random: RandomSource, self: PeerId } {
  const random = seededRandom(seed)
  const clock = fakeClock()
  const self = init.self ?? peerIdFromPublicKey(publicKeyFromRaw(random.bytes(32)))
  const table = new Table({ clock, random, ...init, self })
  return { table, clock, random, self }
}

/**
 * Checks the table's invariants and throws on the first broken one: every bucket ≤ k
 * entries and ≤ maxReplacements replacements, no node twice anywhere, every entry in the
 * bucket its key belongs to, and the IP counts equal to what the entries imply.
 */
export function checkInvariants (table: Table): void {
  const seen = new Set<string>()
  let total = 0
  for (const bucket of table.buckets()) {
    if (bucket.entries.length > table.bucketSize) {
      throw new Error(`bucket ${bucket.index} holds ${bucket.entries.length} entries`)
    }
    if (bucket.replacements.length > table.maxReplacements) {
      throw new Error(`bucket ${bucket.index} holds ${bucket.replacements.length} replacements`)
    }
    for (const entry of bucket.entries) {
      const id = entry.id.toString()
      if (seen.has(id)) {
        throw new Error(`${id} is in the table twice`)
      }
      seen.add(id)
      if (table.bucketIndexOf(entry.key) !== bucket.index) {
        throw new Error(`${id} is in bucket ${bucket.index}, not its own`)
      }
      total++
    }
    const replacementIds = new Set(bucket.replacements.map(r => r.id.toString()))
    if (replacementIds.size !== bucket.replacements.length) {
      throw new Error(`bucket ${bucket.index} has a duplicate replacement`)
    }
    for (const entry of bucket.entries) {
      if (replacementIds.has(entry.id.toString())) {
        throw new Error(`${entry.id.toString()} is both an entry and a replacement`)
      }
    }
  }
  if (total !== table.size) {
    throw new Error(`size is ${table.size} but the buckets hold ${total}`)
  }
  checkIpCounts(table)
}

/** The IP counts the table keeps must equal those its entries imply, table-wide and per bucket. */
function checkIpCounts (table: Table): void {
  const unlimited = (limits: NetLimits): NetLimits => ({ ...limits, limit: Number.MAX_SAFE_INTEGER })
  const expectedTable = new DistinctNetSet(unlimited(table.ipLimits.table))
  for (const bucket of table.buckets()) {
    const expectedBucket = new DistinctNetSet(unlimited(table.ipLimits.bucket))
    for (const entry of bucket.entries) {
      const net = netAddressOf(entry.addrs)
      if (net == null) {
        throw new Error(`${entry.id.toString()} has no address`)
      }
      expectedBucket.add(net)
      expectedTable.add(net)
    }
    assertSameCounts(`bucket ${bucket.index}`, table.bucketIpCounts(bucket.index), expectedBucket.entries(), table.ipLimits.bucket.limit)
  }
  assertSameCounts('table', table.tableIpCounts(), expectedTable.entries(), table.ipLimits.table.limit)
}

function assertSameCounts (where: string, actual: Array<[string, number]>, expected: Array<[string, number]>, limit: number): void {
  const sort = (counts: Array<[string, number]>): string => JSON.stringify([...counts].sort((a, b) => a[0].localeCompare(b[0])))
  if (sort(actual) !== sort(expected)) {
    throw new Error(`${where}: IP counts ${sort(actual)} but entries imply ${sort(expected)}`)
  }
  for (const [group, count] of actual) {
    if (count > limit) {
      throw new Error(`${where}: ${count} entries in ${group}, over the limit of ${limit}`)
    }
  }
}
