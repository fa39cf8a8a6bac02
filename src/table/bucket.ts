import { DistinctNetSet, netAddressKey } from './ip-limits.js'
import { keysEqual } from './key.js'
import type { NetAddress, NetLimits } from './ip-limits.js'
import type { TableNode } from './types.js'

/** A table entry: a `TableNode` plus where it is counted for the IP limits. */
export interface Entry extends TableNode {
  net: NetAddress
  /**
   * Set when an answer reached the node at these addresses (`addrsChecked`), cleared when
   * they change: revalidation's fast lane then leaves it alone, though it passed no ping.
   */
  addrsChecked?: boolean
}

/**
 * Port of geth's `bucket`: live entries (most recently live first), a replacement list
 * (newest first) and the IP set that limits how many entries share a subnet.
 */
export class Bucket {
  readonly index: number
  // BOUNDED: ≤ bucketSize entries
  entries: Entry[] = []
  // BOUNDED: ≤ maxReplacements entries
  replacements: Entry[] = []
  /** Subnets of `entries`: geth `bucket.ips`. */
  readonly ips: DistinctNetSet
  /**
   * Subnets of `replacements`, with the same limit: beyond geth, so one subnet cannot
   * flood the replacement list and take over the bucket as its entries die.
   */
  readonly replacementIps: DistinctNetSet

  constructor (index: number, limits: NetLimits) {
    this.index = index
    this.ips = new DistinctNetSet(limits)
    this.replacementIps = new DistinctNetSet(limits)
  }

  /** The position of the entry with this key, or -1. */
  indexOf (key: Uint8Array): number {
    return findByKey(this.entries, key)
  }

  /** The position of the replacement with this key, or -1. */
  replacementIndexOf (key: Uint8Array): number {
    return findByKey(this.replacements, key)
  }

  /** The last (least recently live) entry. */
  last (): Entry | undefined {
    return this.entries[this.entries.length - 1]
  }

  /**
   * Port of geth `bucket.bump`: moves the entry with this key to the front. Returns
   * whether it was there. Never duplicates: the entry is moved, not copied.
   */
  bump (key: Uint8Array): Entry | undefined {
    const i = this.indexOf(key)
    if (i < 0) {
      return undefined
    }
    const [entry] = this.entries.splice(i, 1) as [Entry]
    this.entries.unshift(entry)
    return entry
  }

  /** Removes the replacement with this key; returns it, if there was one. */
  deleteReplacement (key: Uint8Array): Entry | undefined {
    const i = this.replacementIndexOf(key)
    if (i < 0) {
      return undefined
    }
    const [removed] = this.replacements.splice(i, 1) as [Entry]
    this.replacementIps.remove(removed.net)
    return removed
  }
}

function findByKey (list: Entry[], key: Uint8Array): number {
  for (let i = 0; i < list.length; i++) {
    if (keysEqual((list[i] as Entry).key, key)) {
      return i
    }
  }
  return -1
}

/** A copy of an entry that the caller may keep or change. */
export function snapshotNode (entry: TableNode): TableNode {
  return {
    id: entry.id,
    key: entry.key,
    addrs: [...entry.addrs],
    addedAt: entry.addedAt,
    livenessChecks: entry.livenessChecks,
    ...(entry.recordSeq != null ? { recordSeq: entry.recordSeq } : {})
  }
}

/** Whether two nodes have the same multiaddrs in the same order. */
export function sameAddrs (a: TableNode, b: TableNode): boolean {
  return a.addrs.length === b.addrs.length && a.addrs.every((addr, i) => b.addrs[i]?.equals(addr) === true)
}

/** Whether two net addresses are the same. */
export function sameNet (a: NetAddress, b: NetAddress): boolean {
  return netAddressKey(a) === netAddressKey(b)
}
