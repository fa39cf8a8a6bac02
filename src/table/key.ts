import { sha256 } from '@noble/hashes/sha2.js'
import type { PeerId } from '@libp2p/interface'

// BOUNDED: weak keys, so an entry lives only as long as its PeerId object
const keyCache = new WeakMap<PeerId, Uint8Array>()

/**
 * A node's key: `sha256` of its peer id's multihash bytes, libp2p's Kademlia convention,
 * so distances agree with `@libp2p/kad-dht`. Cached per PeerId object: a lookup hashes a
 * found node to sort it, and the table must not hash it again.
 */
export function keyOf (peerId: PeerId): Uint8Array {
  let key = keyCache.get(peerId)
  if (key == null) {
    key = sha256(peerId.toMultihash().bytes)
    keyCache.set(peerId, key)
  }
  return key
}

/** `a XOR b`, byte by byte. Both keys have the same length. */
export function xor (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length)
  for (let i = 0; i < a.length; i++) {
    out[i] = (a[i] ?? 0) ^ (b[i] ?? 0)
  }
  return out
}

/**
 * Port of geth `enode.LogDist`: the bit length of `a XOR b`, 0 when equal. Compared
 * byte by byte, never through a JS number.
 */
export function logDistance (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) {
    const x = (a[i] ?? 0) ^ (b[i] ?? 0)
    if (x !== 0) {
      return (a.length - i) * 8 - Math.clz32(x) + 24
    }
  }
  return 0
}

/**
 * Port of geth `enode.DistCmp`: which of `a` and `b` is closer to `target`.
 * Negative when `a` is closer, positive when `b` is, 0 when equal.
 */
export function distanceCompare (target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = (a[i] ?? 0) ^ (target[i] ?? 0)
    const db = (b[i] ?? 0) ^ (target[i] ?? 0)
    if (da !== db) {
      return da < db ? -1 : 1
    }
  }
  return 0
}

/** Whether two keys are byte-for-byte equal. */
export function keysEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) {
    return false
  }
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) {
      return false
    }
  }
  return true
}

/**
 * A key at log distance `distance` from `base` (`1 … bits`), with the bits below the
 * highest differing one taken from `randomBytes`. Port of geth's test helper
 * `hashAtDistance`, used here in production to aim a refresh lookup at one bucket.
 */
export function keyAtDistance (base: Uint8Array, distance: number, randomBytes: Uint8Array): Uint8Array {
  if (distance === 0) {
    return base.slice()
  }
  const out = base.slice()
  const bits = base.length * 8
  // the byte and bit of the highest differing bit
  const pos = bits - distance
  const byteIndex = pos >> 3
  const bit = 0x80 >> (pos & 7)
  out[byteIndex] = (base[byteIndex] ?? 0) ^ bit
  // below it, random: keep the bits above `bit` from base, take lower bits at random
  const lowMask = bit - 1
  out[byteIndex] = ((out[byteIndex] ?? 0) & ~lowMask) | ((randomBytes[byteIndex] ?? 0) & lowMask)
  for (let i = byteIndex + 1; i < out.length; i++) {
    out[i] = randomBytes[i] ?? 0
  }
  return out
}
