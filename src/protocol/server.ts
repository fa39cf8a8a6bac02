import { AbortError, NotStartedError, setMaxListeners, TimeoutError } from '@libp2p/interface'
import { pbStream } from '@libp2p/utils'
import { RateLimitedError } from '../errors.js'
import { ContactAddresses } from './contacts.js'
import { checkRequest, isOversized, MAX_ADDRS_PER_PEER, messageCodec, reasonOf, toPbPeer } from './convert.js'
import { Counters } from './counters.js'
import { deadline, nextEvent } from './deadline.js'
import { Message } from './pb/message.js'
import { RateLimiter } from './rate-limiter.js'
import { PeerRecords } from './records.js'
import { relayableAddrs, relayPeerOf } from './relay.js'
import { positive, PROTOCOL_LOG_NAME, protocolSettings } from './settings.js'
import type { RateLimitInit } from './rate-limiter.js'
import type { RelayPeer } from './relay.js'
import type { ProtocolSettings } from './settings.js'
import type {
  ComponentLogger, Connection, Libp2pEvents, Logger, Metrics, PeerId, PeerInfo,
  PeerStore, Startable, Stream, TypedEventTarget
} from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What the server needs from libp2p. */
export interface ProtocolServerComponents {
  /** Where the stream handler is registered. */
  registrar: Registrar
  /** Where a requester's listen addresses are read (identify writes them). */
  peerStore: PeerStore
  /** Its logger: `libp2p:kad-discovery:protocol`. */
  logger: ComponentLogger
  /** When present, the counters of `stats` are exported as a counter group. */
  metrics?: Metrics
  /**
   * libp2p's event bus: when a requester's addresses are not known yet (identify still
   * running on a new connection), the server waits for its `peer:identify`.
   */
  events?: TypedEventTarget<Libp2pEvents>
}

/** A node as `closest` returns it (a `TableNode` fits). */
export interface ClosestNode {
  /** Its peer id. */
  id: PeerId
  /** Its multiaddrs. */
  addrs: Multiaddr[]
}

/** Server settings; the defaults are DESIGN.md §5's. */
export interface ProtocolServerInit {
  /** The protocol id. @default '/kad-discovery/1.0.0' */
  protocol?: string
  /** The most peers in a NODES answer (k). @default 16 */
  bucketSize?: number
  /** Concurrent inbound streams of this protocol per connection. @default 16 */
  maxInboundStreams?: number
  /** Milliseconds a requester has to send its request and take the answer. @default 5000 */
  requestTimeout?: number
  /** The largest request frame accepted, in bytes. @default 4096 */
  maxMessageSize?: number
  /** The largest NODES frame sent, in bytes: farther nodes are left out to fit. @default 32816 */
  maxNodesMessageSize?: number
  /** Inbound budgets, per peer and in total (see `RateLimitInit` for the defaults). */
  rateLimit?: RateLimitInit
  /** The `n` nodes closest to `target`, closest first, live ones preferred. */
  closest(target: Uint8Array, n: number): ClosestNode[]
  /** Called with a requester that sent a valid request: proof it is alive. */
  onContact(contact: PeerInfo): void
}

/** The default `maxInboundStreams`: a lookup has one request at a time open to a peer. */
export const DEFAULT_MAX_INBOUND_STREAMS = 16

/** How long an answer waits for the records it has not cached, ms: past that they are left out. */
export const RECORD_READ_WAIT = 100

/** A `pbStream` codec for bytes that are already an encoded `Message`. */
const ENCODED = { encode: (bytes: Uint8Array) => bytes }

/**
 * The answering side of `/kad-discovery/1.0.0`, geth's `UDPv4.handlePacket` for PING and
 * FINDNODE: a request is refused (stream reset) when over budget, read with a size limit
 * and a deadline, checked, answered, and then its sender is reported as a live contact.
 * Nothing here throws at libp2p: every failure is a counter, a log line and a reset.
 */
export class ProtocolServer implements Startable {
  /**
   * Counters: `received.PING`, `received.FIND_NODE`, `sent.PONG`, `sent.NODES`,
   * `rateLimited.peer`, `rateLimited.global`, `invalid.<reason>`, `timeout`, `aborted`,
   * `unclosed`, `error`, `contact`, `contactWithoutAddress`, `contactError`.
   */
  readonly stats: Record<string, number>
  private readonly components: ProtocolServerComponents
  private readonly init: ProtocolServerInit
  private readonly log: Logger
  private readonly maxInboundStreams: number
  private readonly limiter: RateLimiter
  private readonly settings: ProtocolSettings
  private readonly counters: Counters
  // BOUNDED: one per stream being served (≤ maxInboundStreams per connection, and the
  // rate limiter's budget) plus one per contact awaiting identify (one per peer)
  private readonly inflight = new Set<Promise<void>>()
  private readonly contacts: ContactAddresses
  private readonly records: PeerRecords
  private shutdown = new AbortController()
  private running = false

  constructor (components: ProtocolServerComponents, init: ProtocolServerInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent(PROTOCOL_LOG_NAME)
    this.settings = protocolSettings(init)
    this.maxInboundStreams = positive('maxInboundStreams', init.maxInboundStreams ?? DEFAULT_MAX_INBOUND_STREAMS)
    this.limiter = new RateLimiter(init.rateLimit)
    this.contacts = new ContactAddresses({ peerStore: components.peerStore, events: components.events, identifyTimeout: this.settings.requestTimeout })
    this.records = new PeerRecords(components.peerStore, components.events)
    this.counters = new Counters(components.metrics, 'libp2p_kad_discovery_server_events_total', 'kad-discovery requests received and how they ended')
    this.stats = this.counters.stats
  }

  /** Registers the stream handler. Idempotent. */
  async start (): Promise<void> {
    if (this.running) {
      return
    }
    this.shutdown = new AbortController()
    // one listener per request being served
    setMaxListeners(Infinity, this.shutdown.signal)
    await this.components.registrar.handle(this.settings.protocol, (stream, connection) => this.serve(stream, connection), {
      maxInboundStreams: this.maxInboundStreams
    })
    this.records.start()
    this.running = true
    this.log('serving %s', this.settings.protocol)
  }

  /** Unregisters, aborts every request being served and waits for them. Idempotent. */
  async stop (): Promise<void> {
    if (!this.running) {
      return
    }
    this.running = false
    this.records.stop()
    await this.components.registrar.unhandle(this.settings.protocol)
    this.shutdown.abort(new AbortError('discovery server stopped'))
    await Promise.all([...this.inflight])
    this.log('stopped serving %s', this.settings.protocol)
  }

  /** How many requests are being served, and contacts awaiting identify, right now. */
  get serving (): number {
    return this.inflight.size
  }

  /** Handles one inbound stream; never rejects. */
  private async serve (stream: Stream, connection: Connection): Promise<void> {
    if (!this.running) {
      stream.abort(new NotStartedError('the discovery server is stopped'))
      return
    }
    const decision = this.limiter.take(connection.remotePeer.toString())
    if (decision !== 'ok') {
      // refused before a byte is read: a flood costs one map lookup and a reset each
      this.counters.increment(`rateLimited.${decision}`)
      this.log.trace('refused a request from %p: %s rate limit', connection.remotePeer, decision)
      stream.abort(new RateLimitedError(`over the ${decision} rate limit`))
      return
    }
    const task = this.answer(stream, connection)
    this.inflight.add(task)
    try {
      await task
    } finally {
      this.inflight.delete(task)
    }
  }

  private async answer (stream: Stream, connection: Connection): Promise<void> {
    const peer = connection.remotePeer
    const limit = deadline(this.settings.requestTimeout, () => new TimeoutError(`request from ${peer} timed out`), this.shutdown.signal)
    const signal = limit.signal
    try {
      // buffer one frame and its prefix at most: a peer streaming more is reset, not stored
      const pb = pbStream(stream, { maxDataLength: this.settings.maxMessageSize, maxBufferSize: this.settings.maxMessageSize + 8 })
      const request = await pb.read(messageCodec({ maxPeers: 0 }), { signal })
      checkRequest(request)
      this.counters.increment(`received.${request.type}`)
      this.log.trace('received %s from %p', request.type, peer)
      const built = request.type === Message.Type.PING
        ? Message.encode({ type: Message.Type.PONG, peers: [] })
        : this.nodes(request.target ?? new Uint8Array(0), relayPeerOf(connection.remoteAddr))
      // only an answer with records to read waits: the others go out in the same tick
      const answer = built instanceof Uint8Array ? built : await built
      await pb.write(answer, ENCODED, { signal })
      this.counters.increment(request.type === Message.Type.PING ? 'sent.PONG' : 'sent.NODES')
      this.reportContact(connection)
      await stream.close({ signal })
      // the requester closes its end after reading: until then the stream is held
      if (stream.status === 'open' && !(await nextEvent([stream], 'close', signal))) {
        throw signal.reason
      }
    } catch (err: any) {
      this.countFailure(err, signal, stream)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    } finally {
      limit.clear()
    }
  }

  /**
   * geth's FINDNODE handler: the table's closest nodes, each address checked with the
   * relay rules (`checkRelayAddr`) against the requester, at most `bucketSize` nodes and
   * `MAX_ADDRS_PER_PEER` addresses each, each with the signed peer record the peer store
   * holds for it (as identify received it; never one of ours); the farthest left out
   * until the frame fits.
   */
  private nodes (target: Uint8Array, requester: RelayPeer): Uint8Array | Promise<Uint8Array> {
    let closest: ClosestNode[]
    try {
      closest = this.init.closest(target, this.settings.bucketSize)
    } catch (err) {
      this.log.error('closest() failed - %e', err)
      throw err
    }
    const chosen: Array<{ node: ClosestNode, addrs: Multiaddr[] }> = []
    for (const node of closest.slice(0, this.settings.bucketSize)) {
      const addrs = relayableAddrs(requester, node.addrs).slice(0, MAX_ADDRS_PER_PEER)
      if (addrs.length > 0) {
        chosen.push({ node, addrs })
      }
    }
    // an empty answer is written without a pause: no record to read
    if (chosen.length === 0) {
      return Message.encode({ type: Message.Type.NODES, peers: [] })
    }
    return this.withRecords(chosen)
  }

  /**
   * The NODES frame of `chosen`, each with its record, the farthest left out to fit. The
   * records are read side by side and waited for at most `RECORD_READ_WAIT`: the peer
   * store serialises each peer's reads behind its writes (identify, tags, address merges),
   * and on a busy node those queues grew until no answer went out within the requester's
   * deadline. A record is optional: an entry whose read is slow goes without one, and the
   * read still fills the cache for the next answer.
   */
  private async withRecords (chosen: Array<{ node: ClosestNode, addrs: Multiaddr[] }>): Promise<Uint8Array> {
    const cached = chosen.map(({ node }) => this.records.cached(node.id))
    const records: Array<Uint8Array<ArrayBuffer> | undefined> = cached.map(c => c?.bytes)
    const missing = cached.flatMap((c, i) => c == null ? [i] : [])
    if (missing.length > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined
      const reads = missing.map(async i => {
        const node = (chosen[i] as { node: ClosestNode }).node
        records[i] = await this.records.of(node.id).catch(err => {
          this.log.error('could not read the record of %p - %e', node.id, err)
          return undefined
        })
      })
      await Promise.race([
        Promise.all(reads),
        new Promise<void>(resolve => { timer = setTimeout(resolve, RECORD_READ_WAIT) })
      ])
      clearTimeout(timer)
    }
    const peers = chosen.map(({ node, addrs }, i) => toPbPeer(node.id, addrs, records[i]))
    let bytes = Message.encode({ type: Message.Type.NODES, peers })
    while (bytes.byteLength > this.settings.maxNodesMessageSize && peers.length > 0) {
      peers.pop()
      bytes = Message.encode({ type: Message.Type.NODES, peers })
    }
    return bytes
  }

  private countFailure (err: any, signal: AbortSignal, stream: Stream): void {
    if (signal.aborted) {
      const timedOut = signal.reason instanceof TimeoutError
      const key = timedOut ? (stream.writeStatus === 'closed' ? 'unclosed' : 'timeout') : 'aborted'
      this.counters.increment(key)
      this.log('request from stream %s ended: %s', stream.id, key)
    } else if (reasonOf(err) != null || isOversized(err)) {
      this.counters.increment(`invalid.${reasonOf(err) ?? 'oversized'}`)
      this.log('invalid request on stream %s - %e', stream.id, err)
    } else {
      // the requester reset or closed the stream early: theirs to worry about
      this.counters.increment('error')
      this.log('request on stream %s failed - %e', stream.id, err)
    }
  }

  /** Reports the requester of a valid request as alive, once its addresses are known. */
  private reportContact (connection: Connection): void {
    const task: Promise<void> = this.contact(connection)
      .catch(err => {
        this.counters.increment('contactError')
        this.log.error('could not report contact %p - %e', connection.remotePeer, err)
      })
      .finally(() => { this.inflight.delete(task) })
    this.inflight.add(task)
  }

  private async contact (connection: Connection): Promise<void> {
    const peer = connection.remotePeer
    const multiaddrs = await this.contacts.of(connection, this.shutdown.signal)
    if (!this.running) {
      return
    }
    if (multiaddrs.length === 0) {
      this.counters.increment('contactWithoutAddress')
      this.log('no usable address for contact %p', peer)
      return
    }
    this.counters.increment('contact')
    this.init.onContact({ id: peer, multiaddrs })
  }
}
