import { AbortError, InvalidParametersError, isPeerId, NotStartedError, setMaxListeners, StreamResetError, TimeoutError } from '@libp2p/interface'
import { pbStream } from '@libp2p/utils'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { BUCKET_SIZE, KEY_LENGTH } from '../constants.js'
import { RequestConnections } from './connections.js'
import { checkResponse, fromPbPeer, invalidMessage, isOversized, MAX_ADDRS_PER_PEER, messageCodec, reasonOf } from './convert.js'
import { Counters } from './counters.js'
import { deadline, nextEvent } from './deadline.js'
import { loadMark, overloadedSince } from './load.js'
import { Message } from './pb/message.js'
import { claimedRecordSeq, VerifiedRecords } from './records.js'
import { relayableAddrs, relayPeerOf } from './relay.js'
import { positive, PROTOCOL_LOG_NAME, protocolSettings } from './settings.js'
import type { Lease } from './connections.js'
import type { Deadline } from './deadline.js'
import type { RelayPeer } from './relay.js'
import type { ProtocolSettings } from './settings.js'
import type {
  AbortOptions, ComponentLogger, Connection, Logger, Metrics, PeerId, PeerInfo, Startable, Stream
} from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What the client needs from libp2p. */
export interface ProtocolClientComponents {
  /** Opens connections and finds open ones. */
  connectionManager: ConnectionManager
  /** Its logger: `libp2p:kad-discovery:protocol`. */
  logger: ComponentLogger
  /** When present, the counters of `stats` are exported as a counter group. */
  metrics?: Metrics
}

/** Client settings; the defaults are DESIGN.md §5's. */
export interface ProtocolClientInit {
  /** The protocol id. @default '/kad-discovery/1.0.0' */
  protocol?: string
  /** Milliseconds for one attempt of a request, dial included. @default 5000 */
  requestTimeout?: number
  /** The most peers a NODES answer may hold (k). @default 16 */
  bucketSize?: number
  /** The largest PONG frame accepted, in bytes. @default 4096 */
  maxMessageSize?: number
  /** The largest NODES frame accepted, in bytes. @default 32816 */
  maxNodesMessageSize?: number
  /**
   * How long a connection dialed only for requests may stay open after its last request
   * while libp2p's identify finishes on it, in milliseconds. @default 2000
   */
  connectionLinger?: number
  /**
   * How long an idle connection dialed only for requests waits for the next request before
   * it is closed, while this node holds under a quarter of its `maxConnections`, in
   * milliseconds; 0 closes it once its last request is done. @default 2000
   */
  connectionIdleLinger?: number
  /**
   * The most connections dialed only for requests kept open at once; past it, the one idle
   * longest closes as soon as it is idle. @default 16
   */
  maxRequestConnections?: number
  /**
   * Asked before a connection dialed only for requests is closed: return `true` to keep
   * it (say, the dialer now wants this peer). @default every such connection is closed
   */
  keepConnection?(connection: Connection): boolean
  /**
   * Accept from NODES answers only nodes that come with a verified signed peer record,
   * at the addresses it signed: a lookup then never dials an address nobody signed.
   * @default false
   */
  requireSignedRecords?: boolean
  /**
   * The sequence number of the newest record we hold for a node (the table's
   * `recordSeq`): a record older than it is a replay, refused and counted.
   */
  recordSeqOf?(peer: PeerId): bigint | undefined
}

/** Options of `ProtocolClient.findNode`. */
export interface FindNodeOptions extends AbortOptions {
  /**
   * Called for each record of the answer refused as forged, mismatched, undecodable or
   * oversized (not for an older one): the lookup counts such an answer against its sender.
   */
  onRefusedRecord?(reason: string): void
  /**
   * Called with the connection the answer came over, once it is read: whether that
   * connection reaches the node at an address of its table entry (`reachesAddrs`) decides
   * whether the answer also checked those addresses.
   */
  onAnsweredOver?(connection: Connection): void
}

/** A node of a NODES answer as `findNode` returns it. */
export interface FoundNode extends PeerInfo {
  /** Set when `multiaddrs` are those of its verified signed peer record: its sequence number. */
  recordSeq?: bigint
}

/** A NODES entry read off the wire, before its record is checked. */
interface AnsweredNode {
  id: PeerId
  /** Its listed addresses that passed the relay rules. */
  multiaddrs: Multiaddr[]
  /** Its marshalled signed peer record, unverified. */
  record?: Uint8Array
}

/** A NODES answer read off the wire, and who sent it. */
interface NodesAnswer {
  sender: RelayPeer
  entries: AnsweredNode[]
}

/**
 * The default `connectionIdleLinger`: a lookup's rounds and a refresh's back-to-back lookups
 * ask the same peers within it, and a requester opens about one connection to a peer per
 * linger at most (libp2p refuses a sixth new connection a second from one host). Longer
 * lingers mostly kept connections nobody reused (README, "Side by side").
 */
export const DEFAULT_IDLE_LINGER = 2_000

/** Turns a checked answer into the request's result; throws `invalidMessage(…)` on bad content. */
type Parse<T> = (response: Message, remoteAddr: Multiaddr) => T

/** Options of `ProtocolClient.ping`. */
export interface PingOptions extends AbortOptions {
  /**
   * Only a connection we dialed to one of the peer's listed addresses carries the PING
   * (one is dialed if none is open): revalidation checks the addresses of an entry, not
   * only that its peer is alive over whatever connection happens to be open.
   */
  atAddrs?: boolean
}

/** The state one attempt leaves for the decision to retry. */
interface Attempt {
  /** The connection that went away under the request (pruned, closed by the remote). */
  lost?: Connection
}

/**
 * The requesting side of `/kad-discovery/1.0.0`, geth's `UDPv4.ping` / `UDPv4.findnode`
 * over libp2p streams: one stream per request, every dial, write and read bounded by
 * `requestTimeout`, answers checked and decoded, every failure a typed error and a
 * counter. A request whose connection is lost mid-way is tried once more on a fresh one.
 */
export class ProtocolClient implements Startable {
  /**
   * Counters: `sent.PING`, `sent.FIND_NODE`, `received.PONG`, `received.NODES`, `timeout`, `timeoutOverloaded` (a
   * timeout while our own event loop was saturated: not the peer's fault),
   * `aborted`, `retry`, `invalid.<reason>`, `relayRefused.<reason>`, `dialError`, `reset`,
   * `connectionLost`, `error`, `connectionsOpened`, `connectionsClosed`, `connectionsHandedOver`,
   * `connectionsAbandoned` (a connection our dial opened after the request gave up on it),
   * `dialed.PING`, `dialed.FIND_NODE` (requests that had to dial a connection first),
   * `recordVerified`, `recordUnchecked` (as new as the record held: never used, so not
   * checked), `recordRefused.<reason>`, `recordMissing`, `recordUnusable`.
   */
  readonly stats: Record<string, number>
  private readonly log: Logger
  private readonly settings: ProtocolSettings
  private readonly counters: Counters
  private readonly connections: RequestConnections
  private readonly records: { require: boolean, seqOf?(peer: PeerId): bigint | undefined }
  private readonly verifiedRecords = new VerifiedRecords()
  private shutdown: AbortController

  constructor (components: ProtocolClientComponents, init: ProtocolClientInit = {}) {
    this.log = components.logger.forComponent(PROTOCOL_LOG_NAME)
    this.settings = protocolSettings(init)
    this.counters = new Counters(components.metrics, 'libp2p_kad_discovery_client_events_total', 'kad-discovery requests sent and how they ended')
    this.stats = this.counters.stats
    this.connections = new RequestConnections(components.connectionManager, {
      protocol: this.settings.protocol,
      linger: positive('connectionLinger', init.connectionLinger ?? 2000),
      idleLinger: init.connectionIdleLinger ?? DEFAULT_IDLE_LINGER,
      maxRequestConnections: init.maxRequestConnections,
      keepConnection: init.keepConnection
    }, this.log, this.counters)
    this.records = { require: init.requireSignedRecords ?? false, seqOf: init.recordSeqOf }
    this.shutdown = newShutdown()
  }

  /** Accepts requests again after `stop()`; a new client starts ready. */
  start (): void {
    if (this.shutdown.signal.aborted) {
      this.shutdown = newShutdown()
    }
    this.connections.start()
  }

  /** Aborts every request in flight; later requests throw `NotStartedError` until `start()`. */
  stop (): void {
    this.shutdown.abort(new AbortError('discovery client stopped'))
    this.connections.stop()
  }

  /** How many connections the client holds open only for its requests. */
  get requestConnections (): number {
    return this.connections.size
  }

  /**
   * Hands a connection the client opened for its requests over to the caller (the
   * auto-dialer adopting it as a peer): it is never closed by the client from now on.
   * False when it was not the client's.
   */
  claimConnection (connection: Connection): boolean {
    return this.connections.claim(connection)
  }

  /**
   * geth `UDPv4.ping`: resolves when the peer answers PONG. Throws `TimeoutError`,
   * `AbortError`, `InvalidMessageError`, `UnexpectedResponseError`, or libp2p's dial and
   * stream errors (`StreamResetError` when the peer refused, e.g. over its rate limit).
   * With `atAddrs` the PONG must come over a connection to one of the peer's listed
   * addresses, as geth's ping goes to the endpoint it checks.
   */
  async ping (peer: PeerInfo | PeerId, options: PingOptions = {}): Promise<void> {
    await this.request(peer, { type: Message.Type.PING, peers: [] }, options, () => undefined)
  }

  /**
   * geth `UDPv4.findnode`: the peer's closest nodes to the 32-byte `target`, as it sent
   * them (closest first). Addresses that break the relay rules for this peer are dropped,
   * and nodes left with none; a malformed answer throws, so nothing of it is used. An
   * entry's signed peer record is verified (`verifyPeerRecord`) once the answer is read:
   * a verified one gives the node the addresses its peer signed and its `recordSeq`; a
   * forged or mismatched one drops the entry; an older one than `recordSeqOf` says we hold
   * (a replay) is refused, and its entry is left as plain hearsay about a node we hold,
   * which changes nothing in the table. With `requireSignedRecords`, entries without a
   * verified record are dropped.
   */
  async findNode (peer: PeerInfo | PeerId, target: Uint8Array, options: FindNodeOptions = {}): Promise<FoundNode[]> {
    if (target.byteLength !== KEY_LENGTH) {
      throw new InvalidParametersError(`a FIND_NODE target is ${KEY_LENGTH} bytes, got ${target.byteLength}`)
    }
    // decoded inside the request, so a bad peer id or address aborts the stream like any
    // other protocol error, and throws away what was decoded before it; the records are
    // checked after the stream is done with, so their signatures never hold it open
    const answer = await this.request(peer, { type: Message.Type.FIND_NODE, target: new Uint8Array(target), peers: [] }, options,
      (response, remoteAddr) => this.readNodes(response, relayPeerOf(remoteAddr)))
    return this.certify(answer, options)
  }

  /** The entries of a NODES answer, decoded, deduplicated and relay-checked. */
  private readNodes (response: Message, sender: RelayPeer): NodesAnswer {
    // keyed by the id bytes: a new PeerId's toString() is a base58 encoding, slow enough to show
    const seen = new Set<string>()
    const entries: AnsweredNode[] = []
    for (const entry of response.peers) {
      const info = fromPbPeer(entry)
      const key = uint8ArrayToString(entry.id, 'base16')
      const multiaddrs = relayableAddrs(sender, info.multiaddrs, reason => {
        this.counters.increment(`relayRefused.${reason}`)
      })
      if (!seen.has(key) && (multiaddrs.length > 0 || entry.record != null)) {
        seen.add(key)
        entries.push({ id: info.id, multiaddrs, record: entry.record })
      }
    }
    return { sender, entries }
  }

  /** Verifies the records of an answer's entries and picks each node's addresses. */
  private async certify ({ sender, entries }: NodesAnswer, options: FindNodeOptions): Promise<FoundNode[]> {
    const nodes: FoundNode[] = []
    for (const entry of entries) {
      if (entry.record == null) {
        if (this.records.require) {
          this.counters.increment('recordMissing')
        } else if (entry.multiaddrs.length > 0) {
          nodes.push({ id: entry.id, multiaddrs: entry.multiaddrs })
        }
        continue
      }
      const known = this.records.require ? undefined : this.records.seqOf?.(entry.id)
      const claimed = known == null ? undefined : claimedRecordSeq(entry.record)
      if (known != null && claimed != null && claimed <= known) {
        // whether genuine or forged, a record no newer than the one we hold could change
        // nothing, so it is not worth its signature check (most of the CPU an answer
        // costs): never used, counted, and the entry is plain hearsay about a node our
        // table holds, as an older record's is below
        this.counters.increment(claimed < known ? 'recordRefused.stale' : 'recordUnchecked')
        if (entry.multiaddrs.length > 0) {
          nodes.push({ id: entry.id, multiaddrs: entry.multiaddrs })
        }
        continue
      }
      const verified = await this.verifiedRecords.verify(entry.record, entry.id)
      const held = typeof verified === 'string' ? undefined : this.records.seqOf?.(entry.id)
      if (typeof verified !== 'string' && held != null && verified.seq < held) {
        // older than the record we hold: refused and counted, but not proof of a lie, since
        // libp2p's identify seals a fresh record per answer and peers hold ones of different
        // ages. We hold a newer one, so the node is in our table and, as plain hearsay, the
        // entry changes nothing there (found nodes are never re-addressed); the lookup keeps
        // the candidate. Under requireSignedRecords it is dropped like any unsigned entry.
        this.counters.increment('recordRefused.stale')
        if (!this.records.require && entry.multiaddrs.length > 0) {
          nodes.push({ id: entry.id, multiaddrs: entry.multiaddrs })
        }
        continue
      }
      if (typeof verified === 'string') {
        this.counters.increment(`recordRefused.${verified}`)
        this.log('dropped %p from a NODES answer: its record is %s', entry.id, verified)
        options.onRefusedRecord?.(verified)
        continue
      }
      this.counters.increment('recordVerified')
      const signed = relayableAddrs(sender, verified.multiaddrs, reason => {
        this.counters.increment(`relayRefused.${reason}`)
      }).slice(0, MAX_ADDRS_PER_PEER)
      if (signed.length > 0) {
        nodes.push({ id: entry.id, multiaddrs: signed, recordSeq: verified.seq })
      } else if (this.records.require) {
        this.counters.increment('recordUnusable')
      } else if (entry.multiaddrs.length > 0) {
        // the peer signed nothing this sender may pass on: the entry is plain hearsay
        nodes.push({ id: entry.id, multiaddrs: entry.multiaddrs })
      }
    }
    return nodes
  }

  private async request<T> (peer: PeerInfo | PeerId, request: Message, options: PingOptions & FindNodeOptions, parse: Parse<T>): Promise<T> {
    if (this.shutdown.signal.aborted) {
      throw new NotStartedError('the discovery client is stopped')
    }
    const id = isPeerId(peer) ? peer : peer.id
    const addrs = isPeerId(peer) ? [] : peer.multiaddrs
    this.counters.increment(`sent.${request.type}`)
    const { requestTimeout } = this.settings
    const started = loadMark()
    // one deadline for the request, dial and retry included
    const limit = deadline(requestTimeout, () => {
      const err = new TimeoutError(`${request.type} to ${id} timed out after ${requestTimeout} ms`)
      if (overloadedSince(started, requestTimeout)) {
        LOCAL_OVERLOAD.add(err)
      }
      return err
    }, options.signal, this.shutdown.signal)
    const state: Attempt = {}
    try {
      try {
        return await this.attempt(id, addrs, request, options, parse, state, limit)
      } catch (err) {
        if (state.lost == null || limit.signal.aborted) {
          throw err
        }
        this.counters.increment('retry')
        this.log('connection to %p lost during %s, retrying once - %e', id, request.type, err)
        return await this.attempt(id, addrs, request, options, parse, { lost: state.lost }, limit)
      }
    } finally {
      limit.clear()
    }
  }

  private async attempt<T> (peer: PeerId, addrs: Multiaddr[], request: Message, options: PingOptions & FindNodeOptions, parse: Parse<T>, state: Attempt, limit: Deadline): Promise<T> {
    const signal = limit.signal
    let lease: Lease | undefined
    let stream: Stream | undefined
    try {
      lease = await this.connections.acquire(peer, addrs, { signal }, state.lost, options.atAddrs === true)
      state.lost = undefined
      if (lease.dialed === true) {
        // the cost of each kind of request in connections (revalidation's pings, lookups)
        this.counters.increment(`dialed.${request.type}`)
      }
      stream = await lease.connection.newStream(this.settings.protocol, { signal, negotiateFully: false })
      const maxDataLength = request.type === Message.Type.FIND_NODE ? this.settings.maxNodesMessageSize : this.settings.maxMessageSize
      // buffer one frame and its prefix at most: a peer streaming more is reset, not stored
      const pb = pbStream(stream, { maxDataLength, maxBufferSize: maxDataLength + 8 })
      this.log.trace('sending %s to %p', request.type, peer)
      await pb.write(request, Message, { signal })
      // peers may run another k: accept up to the larger of ours and the default, so a node
      // with a small bucketSize does not refuse every full answer of a default peer
      const response = await pb.read(messageCodec({ maxPeers: Math.max(this.settings.bucketSize, BUCKET_SIZE) }), { signal })
      checkResponse(request.type, response)
      const result = parse(response, lease.connection.remoteAddr)
      this.counters.increment(`received.${response.type}`)
      options.onAnsweredOver?.(lease.connection)
      this.log.trace('received %s from %p', response.type, peer)
      const done = stream
      done.close().catch(err => { done.abort(err) })
      return result
    } catch (err: any) {
      const reset = stream?.status === 'reset'
      stream?.abort(err)
      throw await this.failure(err, limit, lease, reset, state, peer)
    } finally {
      if (lease != null) {
        this.connections.release(lease)
      }
    }
  }

  /** Counts a failed attempt and turns it into the error the caller sees. */
  private async failure (err: any, limit: Deadline, lease: Lease | undefined, reset: boolean, state: Attempt, peer: PeerId): Promise<Error> {
    if (limit.signal.aborted) {
      const reason = limit.signal.reason
      if (reason instanceof TimeoutError) {
        this.counters.increment(LOCAL_OVERLOAD.has(reason) ? 'timeoutOverloaded' : 'timeout')
        this.log('request to %p timed out', peer)
        return reason
      }
      this.counters.increment('aborted')
      return reason instanceof Error && reason.name === 'AbortError' ? reason : new AbortError('request aborted')
    }
    if (reasonOf(err) == null && isOversized(err)) {
      err = invalidMessage('oversized', String(err.message))
    }
    if (reasonOf(err) != null) {
      this.counters.increment(`invalid.${reasonOf(err)}`)
      this.log('invalid answer from %p - %e', peer, err)
      return err
    }
    if (lease == null) {
      this.counters.increment('dialError')
    } else if (await this.connectionWentAway(lease.connection, err)) {
      state.lost = lease.connection
      this.counters.increment('connectionLost')
    } else if (err?.name === 'StreamResetError' || reset) {
      // a refusal (rate limit, stream limit, our request broke its rules) reaches us as a
      // reset, or as a write to a stream the reset already closed: one error for both
      this.counters.increment('reset')
      this.log('%p reset the %s request', peer, this.settings.protocol)
      return err?.name === 'StreamResetError' ? err : new StreamResetError('the peer reset the stream')
    } else {
      this.counters.increment('error')
    }
    this.log('request to %p failed - %e', peer, err)
    return err instanceof Error ? err : new Error(String(err))
  }

  /**
   * Whether a request failed because its connection went away (pruned, or closed by the
   * remote) rather than because the peer refused it. A graceful close reaches the stream
   * as an end of stream a moment before the connection reports it, so a stream that ended
   * without an answer on a connection still open gets that moment. A reset is a refusal
   * (a peer over its rate limit keeps the connection open) and is never asked again.
   */
  private async connectionWentAway (connection: Connection, err: any): Promise<boolean> {
    if (connection.status !== 'open' || CONNECTION_CLOSED_ERRORS.has(err?.name)) {
      return true
    }
    if (err?.name !== 'UnexpectedEOFError') {
      return false
    }
    const grace = deadline(CONNECTION_CLOSE_GRACE, () => new Error('still open'), this.shutdown.signal)
    try {
      await nextEvent([connection], 'close', grace.signal)
    } finally {
      grace.clear()
    }
    return connection.status !== 'open'
  }
}

// BOUNDED: weak; the timeouts that fired while our own event loop was overloaded
const LOCAL_OVERLOAD = new WeakSet<Error>()

/**
 * Whether a failed request is the peer's own fault, to be counted against it (geth's
 * findnode failures): a refused or failed dial, a reset, a malformed answer, a timeout
 * while our event loop kept up. Never a cancellation (the caller's signal, `stop()`) nor a
 * timeout while our own loop was overloaded: neither says anything about the peer.
 */
export function isPeerFault (err: unknown): boolean {
  if (!(err instanceof Error)) {
    return true
  }
  if (err.name === 'AbortError' || err.name === 'NotStartedError') {
    return false
  }
  return !LOCAL_OVERLOAD.has(err)
}

/** Errors libp2p throws for a connection or muxer that is closing or closed. */
const CONNECTION_CLOSED_ERRORS = new Set(['ConnectionClosedError', 'ConnectionClosingError', 'MuxerClosedError'])

/** How long a connection has to report its close after one of its streams ended early. */
const CONNECTION_CLOSE_GRACE = 250

function newShutdown (): AbortController {
  const controller = new AbortController()
  // one listener per request in flight
  setMaxListeners(Infinity, controller.signal)
  return controller
}
