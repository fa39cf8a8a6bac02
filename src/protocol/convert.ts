import { InvalidMessageError } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { KEY_LENGTH } from '../constants.js'
import { UnexpectedResponseError } from '../errors.js'
import { ownBytes, peerIdFromOwnBytes } from '../table/detach.js'
import { Message } from './pb/message.js'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Uint8ArrayList } from 'uint8arraylist'

/**
 * The most multiaddrs one peer may carry in a NODES answer. A node listening on many
 * interfaces and transports has a dozen; more only bloats the receiver's table.
 */
export const MAX_ADDRS_PER_PEER = 16

/** Why a message broke the protocol; each is a counter in the client's and server's stats. */
export type InvalidReason =
  /** The frame's length prefix was over the limit: refused before the body was read. */
  | 'oversized'
  /** The body was not a protobuf `Message`. */
  | 'undecodable'
  /** The type field was missing or a value this version does not know. */
  | 'unknown-type'
  /** A known type in the wrong place: an answer as a request, or the wrong answer. */
  | 'unexpected-type'
  /** A FIND_NODE target that is not 32 bytes. */
  | 'bad-target'
  /** A NODES answer with more than `bucketSize` peers. */
  | 'too-many-peers'
  /** A peer in a NODES answer with more than `MAX_ADDRS_PER_PEER` addresses. */
  | 'too-many-addrs'
  /** A peer id that does not decode. */
  | 'invalid-peer-id'
  /** A multiaddr that does not decode, or is empty. */
  | 'invalid-multiaddr'

/** An `InvalidMessageError` (or `UnexpectedResponseError`) that says which rule was broken. */
export type ProtocolViolation = (InvalidMessageError | UnexpectedResponseError) & { reason: InvalidReason }

/** An `InvalidMessageError` carrying its `reason`. */
export function invalidMessage (reason: InvalidReason, detail: string): ProtocolViolation {
  const err = reason === 'unexpected-type'
    ? new UnexpectedResponseError(detail)
    : new InvalidMessageError(`${reason}: ${detail}`)
  return Object.assign(err, { reason })
}

/** The `reason` of an error made by `invalidMessage`, else `undefined`. */
export function reasonOf (err: unknown): InvalidReason | undefined {
  const reason = (err as Partial<ProtocolViolation> | undefined)?.reason
  return typeof reason === 'string' ? reason : undefined
}

/**
 * Whether `err` is `@libp2p/utils` refusing a frame: a length prefix over `maxDataLength`
 * (or too long itself), or more bytes buffered than one frame may take.
 */
export function isOversized (err: any): boolean {
  return err?.name === 'InvalidDataLengthError' || err?.name === 'InvalidDataLengthLengthError' ||
    err?.name === 'StreamBufferError'
}

/** Limits applied while decoding, so an oversized list fails before it is built. */
export interface DecodeLimits {
  /** Peers in a NODES answer. */
  maxPeers: number
  /** Addresses per peer. */
  maxAddrs?: number
}

/**
 * Decodes one frame into a `Message`, throwing `invalidMessage(…)` with the reason on
 * failure: protons throws plain errors, and the caller must be able to tell a broken
 * message from a broken stream.
 */
export function decodeMessage (buf: Uint8Array | Uint8ArrayList, limits: DecodeLimits): Message {
  try {
    return Message.decode(buf, {
      limits: { peers: limits.maxPeers, peers$: { addrs: limits.maxAddrs ?? MAX_ADDRS_PER_PEER } }
    })
  } catch (err: any) {
    const message = String(err?.message ?? err)
    if (err?.name === 'MaxLengthError') {
      throw invalidMessage(message.includes('"peers"') ? 'too-many-peers' : 'too-many-addrs', message)
    }
    // protons refuses enum values it does not know while decoding
    if (message.includes('enum')) {
      throw invalidMessage('unknown-type', message)
    }
    throw invalidMessage('undecodable', message)
  }
}

/** A `pbStream` codec for `Message` that decodes through `decodeMessage`. */
export function messageCodec (limits: DecodeLimits): { encode(m: Message): Uint8Array, decode(buf: Uint8Array | Uint8ArrayList): Message } {
  return {
    encode: (m: Message) => Message.encode(m),
    decode: (buf: Uint8Array | Uint8ArrayList) => decodeMessage(buf, limits)
  }
}

/**
 * Checks a decoded request: PING, or FIND_NODE with a 32-byte target (geth's FINDNODE
 * carries a 64-byte public key; ours is a key in the keyspace, so any bucket can be aimed at).
 */
export function checkRequest (msg: Message): void {
  switch (msg.type) {
    case Message.Type.PING:
      return
    case Message.Type.FIND_NODE:
      if (msg.target?.byteLength !== KEY_LENGTH) {
        throw invalidMessage('bad-target', `FIND_NODE target of ${msg.target?.byteLength ?? 0} bytes, not ${KEY_LENGTH}`)
      }
      return
    case Message.Type.UNSPECIFIED:
      throw invalidMessage('unknown-type', 'request without a type')
    default:
      throw invalidMessage('unexpected-type', `${msg.type} is not a request`)
  }
}

/** Checks that an answer is the one `request` calls for (PONG for PING, NODES for FIND_NODE). */
export function checkResponse (request: Message.Type, msg: Message): void {
  const expected = request === Message.Type.PING ? Message.Type.PONG : Message.Type.NODES
  if (msg.type === Message.Type.UNSPECIFIED) {
    throw invalidMessage('unknown-type', 'answer without a type')
  }
  if (msg.type !== expected) {
    throw invalidMessage('unexpected-type', `${msg.type} answered ${request}, expected ${expected}`)
  }
}

/**
 * A peer as NODES carries it: its multihash bytes, binary multiaddrs and, when given, its
 * marshalled signed peer record.
 */
export function toPbPeer (id: PeerId, addrs: Multiaddr[], record?: Uint8Array<ArrayBuffer>): Message.Peer {
  return { id: id.toMultihash().bytes, addrs: addrs.map(ma => ma.bytes), ...(record != null ? { record } : {}) }
}

/** Decodes a peer id from its multihash bytes; `invalid-peer-id` when it does not decode. */
export function peerIdFromBytes (bytes: Uint8Array): PeerId {
  try {
    return peerIdFromOwnBytes(bytes)
  } catch (err: any) {
    throw invalidMessage('invalid-peer-id', String(err?.message ?? err))
  }
}

/** Decodes a binary multiaddr; `invalid-multiaddr` when it does not decode or is empty. */
export function multiaddrFromBytes (bytes: Uint8Array): Multiaddr {
  let ma: Multiaddr
  try {
    ma = multiaddr(ownBytes(bytes))
  } catch (err: any) {
    throw invalidMessage('invalid-multiaddr', String(err?.message ?? err))
  }
  if (ma.getComponents().length === 0) {
    throw invalidMessage('invalid-multiaddr', 'empty multiaddr')
  }
  return ma
}

/**
 * A NODES peer as a `PeerInfo` (kad-dht's `fromPbPeerInfo`, but strict): any bad id or
 * address makes the whole message invalid, so nothing from it reaches the table.
 */
export function fromPbPeer (peer: Message.Peer): PeerInfo {
  return { id: peerIdFromBytes(peer.id), multiaddrs: peer.addrs.map(multiaddrFromBytes) }
}
