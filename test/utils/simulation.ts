import { multiaddr } from '@multiformats/multiaddr'
import { distanceCompare, keyOf } from '../../src/table/key.js'
import { seededRandom } from '../../src/table/random.js'
import { Table } from '../../src/table/table.js'
import { fakePeerId } from './peers.js'
import type { LookupNode, QueryFunction } from '../../src/service/iterative-lookup.js'
import type { RandomSource } from '../../src/table/types.js'
import type { PeerId, PeerInfo } from '@libp2p/interface'

interface SimNode {
  id: PeerId
  key: Uint8Array
  hex: string
}

const SIM_ADDR = [multiaddr('/memory/sim')]

function compareBytes (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0)
    if (d !== 0) {
      return d
    }
  }
  return 0
}

/**
 * A network of `size` nodes without libp2p, for lookup tests and the engine benchmark.
 * Each node's table is a real `Table`, built the first time the node is asked: for every
 * bucket, up to `bucketSize` random nodes of the whole network at that distance (found by
 * binary search over the sorted keys, since a bucket is a contiguous key range), which is
 * what a well-refreshed table holds. Queries answer with `table.closest(target, k,
 * { preferLive: true })`, as the FIND_NODE server does.
 */
export class SimulatedNetwork {
  // BOUNDED: size nodes, sorted by key
  readonly nodes: SimNode[]
  readonly bucketSize: number
  private readonly random: RandomSource
  // BOUNDED: ≤ size tables, built on first query
  private readonly tables = new Map<string, Table>()
  private readonly byHex = new Map<string, number>()
  /** Nodes that do not answer. */
  readonly dead = new Set<string>()
  /** FIND_NODE requests answered or refused so far. */
  messages = 0

  constructor (size: number, seed = 1, bucketSize = 16) {
    this.random = seededRandom(seed)
    this.bucketSize = bucketSize
    const nodes: SimNode[] = []
    for (let i = 0; i < size; i++) {
      const id = fakePeerId(this.random)
      const key = keyOf(id)
      nodes.push({ id, key, hex: Buffer.from(key).toString('hex') })
    }
    this.nodes = nodes.sort((a, b) => compareBytes(a.key, b.key))
    this.nodes.forEach((n, i) => this.byHex.set(n.hex, i))
  }

  /** The table of node `index`, built on first use. */
  tableOf (index: number): Table {
    const node = this.nodes[index] as SimNode
    let table = this.tables.get(node.hex)
    if (table == null) {
      table = new Table({ self: node.id, clock: () => 0, random: this.random, bucketSize: this.bucketSize })
      for (let b = table.nBuckets - 1; b >= 0; b--) {
        const [lo, hi] = this.bucketRange(node.key, table, b)
        const count = Math.min(this.bucketSize, hi - lo)
        for (let i = 0; i < count * 2 && (table.bucketFill()[b] ?? 0) < count; i++) {
          const pick = this.nodes[lo + this.random.int(hi - lo)] as SimNode
          if (pick.hex !== node.hex) {
            table.addFoundNode({ id: pick.id, multiaddrs: SIM_ADDR })
          }
        }
      }
      table.setInitDone()
      this.tables.set(node.hex, table)
    }
    return table
  }

  /** The FIND_NODE request, answered by the asked node's table. */
  readonly query: QueryFunction = async (node: LookupNode, target: Uint8Array): Promise<PeerInfo[]> => {
    this.messages++
    const hex = Buffer.from(node.key).toString('hex')
    const index = this.byHex.get(hex)
    if (index == null || this.dead.has(hex)) {
      throw new Error('no answer')
    }
    // tables are not told who died, just as real ones keep dead nodes until revalidation
    return this.tableOf(index).closest(target, this.bucketSize, { preferLive: true })
      .map(n => ({ id: n.id, multiaddrs: n.addrs }))
  }

  /** The true `k` closest live nodes of the whole network to `target`. */
  trueClosest (target: Uint8Array, k: number): SimNode[] {
    return this.nodes
      .filter(n => !this.dead.has(n.hex))
      .sort((a, b) => distanceCompare(target, a.key, b.key))
      .slice(0, k)
  }

  /** The index range `[lo, hi)` of the nodes in bucket `b` of `table` (whose self has `key`). */
  private bucketRange (key: Uint8Array, table: Table, b: number): [number, number] {
    const [minDistance, maxDistance] = table.bucketDistances(b)
    // keys at log distance ≤ maxDistance share the top (256 - maxDistance) bits with key
    const range = (sharedBits: number): [number, number] => {
      const lo = key.slice()
      const hi = key.slice()
      for (let bit = sharedBits; bit < 256; bit++) {
        const byte = bit >> 3
        const mask = 0x80 >> (bit & 7)
        lo[byte] = (lo[byte] ?? 0) & ~mask
        hi[byte] = (hi[byte] ?? 0) | mask
      }
      return [this.lowerBound(lo), this.upperBound(hi)]
    }
    const [outerLo, outerHi] = range(256 - maxDistance)
    if (minDistance <= 1) {
      return [outerLo, outerHi]
    }
    // exactly maxDistance: the half of the outer range that differs from key at its top bit
    const [innerLo, innerHi] = range(256 - maxDistance + 1)
    return innerLo === outerLo ? [innerHi, outerHi] : [outerLo, innerLo]
  }

  private lowerBound (key: Uint8Array): number {
    let lo = 0
    let hi = this.nodes.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareBytes((this.nodes[mid] as SimNode).key, key) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  private upperBound (key: Uint8Array): number {
    let lo = 0
    let hi = this.nodes.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareBytes((this.nodes[mid] as SimNode).key, key) <= 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
