import { setMaxListeners } from 'node:events'
import { pbStream } from '@libp2p/utils'
import { PROTOCOL } from '../../../src/constants.js'
import { Message } from '../../../src/protocol/pb/message.js'
import { streamClosed } from '../../protocol/utils.js'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * A hand-written request, the way an attacker's own code would send it: one stream, one
 * frame, one answer. Rejects on a reset, a bad answer or after `ms`.
 */
export async function sendRequest (connection: Connection, request: Message, ms = 5000): Promise<Message> {
  const signal = AbortSignal.timeout(ms)
  // one listener per step of the request
  setMaxListeners(Infinity, signal)
  // optimistic protocol selection, as the module's own client does: no extra round trip
  const stream = await connection.newStream(PROTOCOL, { signal, negotiateFully: false })
  try {
    const pb = pbStream(stream, { maxDataLength: 64 * 1024 })
    await pb.write(request, Message, { signal })
    const answer = await pb.read(Message, { signal })
    await stream.close({ signal })
    return answer
  } catch (err: any) {
    stream.abort(err)
    throw err
  }
}

/**
 * Writes raw bytes on a new stream, closes its writable end and waits (at most `ms`) for
 * the node to end the stream. Returns how it ended: `closed` (answered), `reset`, `open`
 * (still waiting when `ms` ran out, then aborted) or `refused` (no stream was opened).
 */
export async function sendRaw (connection: Connection, bytes: Uint8Array, ms = 5000): Promise<string> {
  let stream: Stream
  try {
    stream = await connection.newStream(PROTOCOL, { signal: AbortSignal.timeout(ms), negotiateFully: false })
  } catch {
    return 'refused'
  }
  try {
    if (bytes.byteLength > 0) {
      stream.send(bytes)
    }
    await stream.close({ signal: AbortSignal.timeout(ms) })
    await streamClosed(stream, ms)
    return stream.status === 'closed' ? 'closed' : stream.status
  } catch {
    const status = stream.status === 'open' ? 'open' : stream.status
    stream.abort(new Error('gave up'))
    return status
  }
}

/**
 * Serves the discovery protocol on `node` by hand: `respond` gets each decoded request and
 * returns the answer's bytes (a frame, or anything else), or `undefined` to hold the stream
 * (it is then `hold`, which decides when and how the stream ends). Stands in for a peer
 * whose code is not ours.
 */
export async function serveByHand (node: Libp2p, respond: (request: Message, connection: Connection) => Uint8Array | undefined, hold?: (stream: Stream) => Promise<void>): Promise<void> {
  await node.handle(PROTOCOL, async (stream, connection) => {
    try {
      const pb = pbStream(stream, { maxDataLength: 4096 })
      const request = await pb.read(Message, { signal: AbortSignal.timeout(10_000) })
      const answer = respond(request, connection)
      if (answer == null) {
        await hold?.(stream)
        return
      }
      stream.send(answer)
      await stream.close({ signal: AbortSignal.timeout(10_000) })
    } catch (err: any) {
      stream.abort(err)
    }
  }, { maxInboundStreams: 256 })
}

/** `node`'s open connection (a peer of these scenarios talks to one node), or a new one to `addr`. */
export async function connectionTo (node: Libp2p, addr: Multiaddr): Promise<Connection> {
  return node.getConnections().find(c => c.status === 'open') ?? node.dial(addr, { signal: AbortSignal.timeout(10_000) })
}
