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

  constructor (target: Uint8Array, max: number) {
    this.target = target
    this.max = max
  }

  /**
   * Port of geth `nodesByDistance.push`: inserts `node` in order. Returns whether it was
   * kept (false when it is a duplicate or farther than every one of `max` entries).
   */
  push (node: T): boolean {
    // binary search for the first entry farther than node
    let lo = 0
    let hi = this.entries.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      const entry = this.entries[mid] as T
      const cmp = distanceCompare(this.target, entry.key, node.key)
      if (cmp === 0 && keysEqual(entry.key, node.key)) {
        return false
      }
      if (cmp <= 0) {
        lo = mid + 1
      } else {
        hi = mid
      }
    }
    // equal distance means equal key, so a duplicate sits right before lo
    const before = this.entries[lo - 1]
    if (before != null && keysEqual(before.key, node.key)) {
      return false
    }
    if (lo >= this.max) {
      return false
    }
    this.entries.splice(lo, 0, node)
    if (this.entries.length > this.max) {
      this.entries.pop()
    }
    return true
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
