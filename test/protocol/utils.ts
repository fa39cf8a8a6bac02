import assert from 'node:assert/strict'
import { lpStream } from '@libp2p/utils'
import { PROTOCOL } from '../../src/constants.js'
import { ProtocolClient } from '../../src/protocol/client.js'
import { ProtocolServer } from '../../src/protocol/server.js'
import { seededRandom } from '../../src/table/random.js'
import { Table } from '../../src/table/table.js'
import { TestNodes } from '../utils/libp2p.js'
import type { ProtocolClientInit } from '../../src/protocol/client.js'
import type { ProtocolServerInit } from '../../src/protocol/server.js'
import type { NodeComponents } from '../utils/libp2p.js'
import type { Connection, Libp2p, PeerInfo, Startable, Stream } from '@libp2p/interface'

/** What a test node running the protocol is given. */
export interface ProtocolServiceInit {
  client?: ProtocolClientInit
  server?: Omit<ProtocolServerInit, 'closest' | 'onContact'>
}

/**
 * The protocol wired the way the discovery service wires it, minus everything else: a
 * real `Table` answers FIND_NODE (`closest` with `preferLive`), and contacts are recorded
 * instead of being added to it, so tests can see exactly what was reported.
 */
export class ProtocolService implements Startable {
  readonly client: ProtocolClient
  readonly server: ProtocolServer
  readonly table: Table
  /** Every contact the server reported, in order. BOUNDED: one test's requests. */
  readonly contacts: PeerInfo[] = []

  constructor (components: NodeComponents, init: ProtocolServiceInit = {}) {
    this.table = new Table({ self: components.peerId, clock: Date.now, random: seededRandom(1) })
    this.client = new ProtocolClient(components, init.client)
    this.server = new ProtocolServer(components, {
      ...init.server,
      closest: (target, n) => this.table.closest(target, n, { preferLive: true }),
      onContact: (contact) => { this.contacts.push(contact) }
    })
  }

  async start (): Promise<void> {
    this.client.start()
    await this.server.start()
  }

  async stop (): Promise<void> {
    this.client.stop()
    await this.server.stop()
  }
}

/** A factory for `services: { discovery: protocolService(init) }`. */
export function protocolService (init: ProtocolServiceInit = {}): (components: NodeComponents) => ProtocolService {
  return (components) => new ProtocolService(components, init)
}

/**
 * The nodes of each test in the calling `describe`: stopped after every test, which also
 * fails if anything rejected unhandled while it ran.
 */
export function useNodes (): TestNodes {
  const nodes = new TestNodes()
  const rejections: unknown[] = []
  const onRejection = (reason: unknown): void => { rejections.push(reason) }
  beforeEach(() => {
    rejections.length = 0
    process.on('unhandledRejection', onRejection)
  })
  afterEach(async () => {
    await nodes.stop()
    process.off('unhandledRejection', onRejection)
    assert.deepEqual(rejections, [], 'no unhandled rejections')
  })
  return nodes
}

/** `bytes` behind its unsigned-varint length prefix: one frame of the protocol. */
export function frame (bytes: Uint8Array): Uint8Array {
  return concat(varint(bytes.byteLength), bytes)
}

/** An unsigned varint (protobuf and multiformats encoding). */
export function varint (value: number): Uint8Array {
  const out: number[] = []
  let v = value
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return Uint8Array.from(out)
}

/** The bytes of `parts`, one after the other. */
export function concat (...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.byteLength
  }
  return out
}

/**
 * Makes `node` answer every `/kad-discovery/1.0.0` stream by hand: `respond` gets the
 * stream and the connection after the request frame was read (so the requester's write
 * completed) and writes whatever it wants. Stands in for a broken or hostile peer.
 */
export async function answerByHand (node: Libp2p, respond: (stream: Stream, connection: Connection) => void | Promise<void>, options: { readRequest?: boolean } = {}): Promise<void> {
  await node.handle(PROTOCOL, async (stream, connection) => {
    try {
      if (options.readRequest ?? true) {
        await lpStream(stream).read({ signal: AbortSignal.timeout(5000) })
      }
      await respond(stream, connection)
    } catch (err: any) {
      stream.abort(err)
    }
  })
}

/** Resolves when `stream` closes, however it ends; bounded by `ms`. */
export async function streamClosed (stream: Stream, ms = 5000): Promise<void> {
  if (stream.status === 'closed' || stream.status === 'reset' || stream.status === 'aborted') {
    return
  }
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`stream still ${stream.status} after ${ms} ms`)) }, ms)
    stream.addEventListener('close', () => {
      clearTimeout(timer)
      resolve()
    }, { once: true })
  })
}
