import { peerIdFromMultihash } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'

// Node hands out small buffers as slices of shared 8 KiB slabs, and a message decoded from
// a frame is a set of views into it: a peer id or multiaddr kept for minutes from such a
// view keeps its whole slab alive. At N = 200 in one process about 7 700 slabs were alive
// (300 KiB a node), a third of them held by what this module keeps: peer ids and addresses
// decoded from NODES answers, peer ids taken from libp2p's connections. What the table and
// the decoder keep is copied into bytes of its own first. (A multiaddr's own `bytes` are
// encoded lazily into a pooled buffer by @multiformats/multiaddr; that is out of reach.)

/** `bytes`, or a copy of them in an ArrayBuffer of their own when they are a view into a larger one. */
export function ownBytes (bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  return isWholeBuffer(bytes) ? bytes as Uint8Array<ArrayBuffer> : Uint8Array.prototype.slice.call(bytes)
}

/** `id`, or the same peer id decoded afresh from a copy of its multihash when that is a view. */
export function ownPeerId (id: PeerId): PeerId {
  const multihash = id.toMultihash()
  if (isWholeBuffer(multihash.bytes) && multihash.digest.buffer === multihash.bytes.buffer) {
    return id
  }
  try {
    return peerIdFromOwnBytes(multihash.bytes)
  } catch {
    // a peer id libp2p made but this decoder does not know: kept as it is, view or not
    return id
  }
}

/** Decodes a peer id from a copy of its multihash bytes; throws when they do not decode. */
export function peerIdFromOwnBytes (bytes: Uint8Array): PeerId {
  return peerIdFromMultihash(multihashOf(ownBytes(bytes)))
}

function isWholeBuffer (bytes: Uint8Array): boolean {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
}

type MultihashDigest = Parameters<typeof peerIdFromMultihash>[0]

/**
 * The parts of a multihash (`<varint code><varint size><digest>`), read here rather than
 * through a base58 round trip and `peerIdFromString`, which cost 30 µs a peer: most of
 * decoding a NODES answer.
 */
function multihashOf (bytes: Uint8Array): MultihashDigest {
  const [code, codeLength] = readVarint(bytes, 0)
  const [size, sizeLength] = readVarint(bytes, codeLength)
  const digest = bytes.subarray(codeLength + sizeLength)
  if (digest.byteLength !== size) {
    throw new Error(`multihash digest of ${digest.byteLength} bytes, header says ${size}`)
  }
  return { code, size, digest, bytes } as unknown as MultihashDigest
}

/** An unsigned varint at `offset`: its value and how many bytes it took. */
function readVarint (bytes: Uint8Array, offset: number): [number, number] {
  let value = 0
  for (let i = 0; i < 4; i++) {
    const byte = bytes[offset + i]
    if (byte == null) {
      throw new Error('truncated varint')
    }
    value += (byte & 0x7f) * 2 ** (7 * i)
    if (byte < 0x80) {
      return [value, i + 1]
    }
  }
  throw new Error('varint too long for a multihash header')
}
