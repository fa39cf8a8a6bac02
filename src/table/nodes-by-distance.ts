import { distanceCompare, keysEqual } from './key.js'

/** Anything with a key can be sorted by distance. */
export interface Keyed {
  readonly key: Uint8Array
}

/**
 * Port of geth `nodesByDistance`: a list of nodes sorted by XOR distance to `target`,
 * closest first, holding at most `max` entries. A node whose key is already present is
 * ignored, so the list never holds duplicates.
 */
export class NodesByDistance<T extends Keyed> {
  readonly target: Uint8Array
  readonly max: number
  // BOUNDED: ≤ max entries
  readonly entries: T[] = []
  // BOUNDED: ≤ max entries; the first 32 bits of each entry's distance, so most
  // comparisons are one integer comparison instead of a byte loop
  private readonly prefixes: number[] = []

  constructor (target: Uint8Array, max: number) {
    this.target = target
    this.max = max
  }

  /**
   * Port of geth `nodesByDistance.push`: inserts `node` in order. Returns whether it was
   * kept (false when it is a duplicate or farther than every one of `max` entries).
   */
  push (node: T): boolean {
    const prefix = distancePrefix(this.target, node.key)
    if (this.entries.length >= this.max && prefix > (this.prefixes[this.prefixes.length - 1] ?? 0)) {
      return false
    }
    // binary search for the first entry farther than node
    let lo = 0
    let hi = this.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const midPrefix = this.prefixes[mid] as number
      const cmp = midPrefix !== prefix
        ? midPrefix - prefix
        : distanceCompare(this.target, (this.entries[mid] as T).key, node.key)
      if (cmp === 0) {
        // equal distance means equal key
        return false
      }
      if (cmp < 0) {
        lo = mid + 1
      } else {
        hi = mid
      }
    }
    if (lo >= this.max) {
      return false
    }
    this.entries.splice(lo, 0, node)
    this.prefixes.splice(lo, 0, prefix)
    if (this.entries.length > this.max) {
      this.entries.pop()
      this.prefixes.pop()
    }
    return true
  }

  /** Removes the entry at position `i`. */
  remove (i: number): void {
    this.entries.splice(i, 1)
    this.prefixes.splice(i, 1)
  }

  /** How many entries it holds. */
  get length (): number {
    return this.entries.length
  }

  /** Whether an entry has this key. */
  has (key: Uint8Array): boolean {
    return this.entries.some(entry => keysEqual(entry.key, key))
  }
}

/** The first 32 bits of `key XOR target`, as an unsigned integer. */
function distancePrefix (target: Uint8Array, key: Uint8Array): number {
  return (
    (((key[0] ?? 0) ^ (target[0] ?? 0)) << 24) |
    (((key[1] ?? 0) ^ (target[1] ?? 0)) << 16) |
    (((key[2] ?? 0) ^ (target[2] ?? 0)) << 8) |
    ((key[3] ?? 0) ^ (target[3] ?? 0))
  ) >>> 0
}

/** Anything the table can rank: a key and how many liveness checks it passed. */
export interface Rankable extends Keyed {
  readonly livenessChecks: number
}

/**
 * The core of geth v1.9 `Table.findnodeByID`: the `n` nodes of `entries` closest to
 * `target`, closest first. With `preferLive`, nodes with a liveness check are chosen
 * first; geth answered with live nodes only, we fill the remaining places with the
 * closest of the rest, so an answer is never shorter than it could be.
 */
export function findClosest<T extends Rankable> (entries: Iterable<T>, target: Uint8Array, n: number, preferLive: boolean): T[] {
  const all = new NodesByDistance<T>(target, n)
  const live = new NodesByDistance<T>(target, n)
  for (const entry of entries) {
    all.push(entry)
    if (preferLive && entry.livenessChecks > 0) {
      live.push(entry)
    }
  }
  if (!preferLive || live.length === 0) {
    return all.entries
  }
  if (live.length >= n) {
    return live.entries
  }
  const merged = new NodesByDistance<T>(target, n)
  for (const entry of live.entries) {
    merged.push(entry)
  }
  for (const entry of all.entries) {
    if (merged.length >= n) {
      break
    }
    merged.push(entry)
  }
  return merged.entries
}
