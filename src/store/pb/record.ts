import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface NodeRecord {
  addrs: Uint8Array<ArrayBuffer>[]
  lastPingSent: bigint
  lastPongReceived: bigint
  findFails: number
  firstSeen?: bigint
}

export namespace NodeRecord {
  let _codec: Codec<NodeRecord>

  export const codec = (): Codec<NodeRecord> => {
    if (_codec == null) {
      _codec = message<NodeRecord>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(10)
            w.bytes(value)
          }
        }

        if ((obj.lastPingSent != null && obj.lastPingSent !== 0n)) {
          w.uint32(16)
          w.uint64(obj.lastPingSent)
        }

        if ((obj.lastPongReceived != null && obj.lastPongReceived !== 0n)) {
          w.uint32(24)
          w.uint64(obj.lastPongReceived)
        }

        if ((obj.findFails != null && obj.findFails !== 0)) {
          w.uint32(32)
          w.uint32(obj.findFails)
        }

        if (obj.firstSeen != null) {
          w.uint32(41)
          w.fixed64(obj.firstSeen)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          addrs: [],
          lastPingSent: 0n,
          lastPongReceived: 0n,
          findFails: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.bytes())
              break
            }
            case 2: {
              obj.lastPingSent = reader.uint64()
              break
            }
            case 3: {
              obj.lastPongReceived = reader.uint64()
              break
            }
            case 4: {
              obj.findFails = reader.uint32()
              break
            }
            case 5: {
              obj.firstSeen = reader.fixed64()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          addrs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.addrs != null && obj.addrs === opts.limits.addrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "addrs" had too many elements')
              }

              yield {
                field: `${prefix}.addrs[]`,
                index: obj.addrs,
                value: reader.bytes()
              }

              obj.addrs++

              break
            }
            case 2: {
              yield {
                field: `${prefix}.lastPingSent`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.lastPongReceived`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.findFails`,
                value: reader.uint32()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.firstSeen`,
                value: reader.fixed64()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface NodeRecordAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface NodeRecordLastPingSentFieldEvent {
    field: '$.lastPingSent'
    value: bigint
  }

  export interface NodeRecordLastPongReceivedFieldEvent {
    field: '$.lastPongReceived'
    value: bigint
  }

  export interface NodeRecordFindFailsFieldEvent {
    field: '$.findFails'
    value: number
  }

  export interface NodeRecordFirstSeenFieldEvent {
    field: '$.firstSeen'
    value: bigint
  }

  export function encode (obj: Partial<NodeRecord>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, NodeRecord.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeRecord>): NodeRecord {
    return decodeMessage(buf, NodeRecord.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<NodeRecord>): Generator<NodeRecordAddrsFieldEvent | NodeRecordLastPingSentFieldEvent | NodeRecordLastPongReceivedFieldEvent | NodeRecordFindFailsFieldEvent | NodeRecordFirstSeenFieldEvent> {
    return streamMessage(buf, NodeRecord.codec(), opts)
  }
}
