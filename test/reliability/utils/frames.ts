import { multiaddr } from '@multiformats/multiaddr'
import { toPbPeer } from '../../../src/protocol/convert.js'
import { Message } from '../../../src/protocol/pb/message.js'
import { concat, frame, varint } from '../../protocol/utils.js'
import { fakePeerId } from '../../utils/peers.js'
import type { RandomSource } from '../../../src/table/types.js'

/** The kinds of bad input the fuzzer makes, one per frame, in turn. */
export const FRAME_KINDS = [
  'random-body', 'random-raw', 'flipped', 'truncated', 'huge-prefix', 'wrong-length', 'trailing', 'odd-fields'
] as const

/** A kind of fuzzed frame. */
export type FrameKind = typeof FRAME_KINDS[number]

/**
 * Fuzzed input for the discovery protocol: random bytes, valid messages with flipped
 * bytes, truncated frames, huge and overlong length prefixes, lengths that lie, frames
 * with trailing bytes, and protobuf with unknown fields or wrong wire types. Seeded, so
 * a failing input can be made again.
 */
export class FrameFuzzer {
  private readonly random: RandomSource

  constructor (random: RandomSource) {
    this.random = random
  }

  /** The bytes of one fuzzed frame of `kind`. */
  make (kind: FrameKind): Uint8Array {
    const r = this.random
    switch (kind) {
      case 'random-body':
        return frame(r.bytes(this.length()))
      case 'random-raw':
        return r.bytes(1 + r.int(300))
      case 'flipped': {
        const bytes = frame(this.validMessage())
        for (let flips = 1 + r.int(4); flips > 0; flips--) {
          const i = r.int(bytes.length)
          bytes[i] = (bytes[i] as number) ^ (1 + r.int(255))
        }
        return bytes
      }
      case 'truncated': {
        const bytes = frame(this.validMessage())
        return bytes.subarray(0, r.int(bytes.length))
      }
      case 'huge-prefix': {
        const choices = [
          () => varint(4097 + r.int(1_000_000)),
          () => varint(2 ** 31 + r.int(2 ** 20)),
          () => varint(Number.MAX_SAFE_INTEGER - r.int(1000)),
          // ten continuation bytes and more: a length that never ends
          () => new Uint8Array(10 + r.int(20)).fill(0xff),
          // an overlong encoding of a small length
          () => Uint8Array.of(0x85, 0x80, 0x80, 0x80, 0x80, 0x00)
        ]
        const prefix = (choices[r.int(choices.length)] as () => Uint8Array)()
        return concat(prefix, r.bytes(r.int(64)))
      }
      case 'wrong-length': {
        const body = this.validMessage()
        const lie = Math.max(0, body.length + r.int(64) - 32)
        return concat(varint(lie), body)
      }
      case 'trailing':
        return concat(frame(this.validMessage()), r.int(2) === 0 ? frame(this.validMessage()) : r.bytes(1 + r.int(100)))
      case 'odd-fields':
        return frame(this.oddFields())
    }
  }

  /** A valid message of any type: requests, answers, odd but well-formed targets. */
  private validMessage (): Uint8Array {
    const r = this.random
    switch (r.int(5)) {
      case 0:
        return Message.encode({ type: Message.Type.PING, peers: [] })
      case 1:
        return Message.encode({ type: Message.Type.FIND_NODE, target: new Uint8Array(r.bytes(32)), peers: [] })
      case 2:
        return Message.encode({ type: Message.Type.FIND_NODE, target: new Uint8Array(r.bytes(r.int(80))), peers: [] })
      case 3:
        return Message.encode({ type: Message.Type.PONG, peers: [] })
      default:
        return Message.encode({
          type: Message.Type.NODES,
          peers: Array.from({ length: r.int(4) }, () => toPbPeer(fakePeerId(r), [multiaddr(`/ip4/127.8.${r.int(256)}.${r.int(256)}/tcp/${1 + r.int(65535)}`)]))
        })
    }
  }

  /** Protobuf a `Message` decoder has to refuse or skip: unknown fields, wrong wire types, bad enums, nesting. */
  private oddFields (): Uint8Array {
    const r = this.random
    const parts: Uint8Array[] = []
    for (let n = 1 + r.int(6); n > 0; n--) {
      const field = 1 + r.int(20)
      const wire = [0, 1, 2, 5, 3, 4, 6, 7][r.int(8)] as number
      parts.push(varint((field << 3) | wire))
      if (wire === 0) {
        parts.push(varint(r.int(2) === 0 ? r.int(10) : 2 ** 32 + r.int(2 ** 20)))
      } else if (wire === 1) {
        parts.push(r.bytes(8))
      } else if (wire === 5) {
        parts.push(r.bytes(4))
      } else if (wire === 2) {
        const len = r.int(3) === 0 ? 1000 + r.int(5000) : r.int(40)
        parts.push(varint(len), r.bytes(Math.min(len, 40)))
      }
    }
    return concat(...parts)
  }

  /** Mostly short bodies, sometimes up to and past the 4 KiB request limit. */
  private length (): number {
    const r = this.random
    return r.int(10) === 0 ? r.int(6000) : r.int(300)
  }
}
