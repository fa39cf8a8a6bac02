import { InvalidParametersError, setMaxListeners } from '@libp2p/interface'
import { CODE_P2P } from '@multiformats/multiaddr'
import { raceSignal } from 'race-signal'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { MAX_REQUEST_CONNECTIONS } from '../constants.js'
import { deadline, nextEvent } from './deadline.js'
import { ipOf } from './relay.js'
import type { Counters } from './counters.js'
import type { AbortOptions, Connection, Logger, PeerId } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Protocols whose streams do not make a connection worth keeping: libp2p runs them on
 * every connection by itself (libp2p's `safelyCloseConnectionIfUnused` list, plus the
 * connection monitor's ping, which opens a stream on every connection every 10 s).
 */
export const HOUSEKEEPING_PROTOCOLS = new Set([
  '/ipfs/id/1.0.0',
  '/ipfs/id/push/1.0.0',
  '/ipfs/ping/1.0.0',
  '/libp2p/autonat/1.0.0',
  '/libp2p/autonat/2/dial-request',
  '/libp2p/autonat/2/dial-back',
  '/libp2p/dcutr'
])

/** Housekeeping a new connection is worth keeping open for: identify's exchange. */
const IDENTIFY_PROTOCOLS = new Set(['/ipfs/id/1.0.0', '/ipfs/id/push/1.0.0'])

/** How `RequestConnections` is set up. */
export interface RequestConnectionsInit {
  /** Our protocol: its streams, in either direction, are requests we wait for. */
  protocol: string
  /** How long a request-only connection may linger for identify before it is closed. */
  linger: number
  /**
   * How long an idle request-only connection waits for the next request before it is
   * closed, while this node holds fewer than a quarter of its `maxConnections`: a lookup
   * or a refresh asks the same peers again within seconds, and a new connection (with its
   * identify exchange) costs ten times the request. 0 closes at once.
   */
  idleLinger?: number
  /**
   * The most request-only connections kept open at once: past it, the one idle longest
   * is closed as soon as it is idle. @default 16
   */
  maxRequestConnections?: number
  /** Asked before a request-only connection is closed; `true` keeps it. */
  keepConnection?(connection: Connection): boolean
}

interface Owned {
  connection: Connection
  /** Requests of ours using it now. */
  refs: number
  /** When its last request ended: the least recently used idle connection goes first. */
  idleSince: number
  /** Wakes an idle linger: `true` when a request took the connection again. */
  wake?: (reused: boolean) => void
  /** Picked to close, to make room under `maxRequestConnections`. */
  evicted?: boolean
}

/** A connection for one request, and whether this request owns a share of it. */
export interface Lease {
  connection: Connection
  /** Whether the connection was opened for discovery and is closed after its last request. */
  owned: boolean
  /** Whether this request dialed it (alone or with others of ours). */
  dialed?: boolean
}

/**
 * The connection policy of DESIGN.md §6, chosen by measurement (README, "Connections"):
 * a request reuses any open connection to the peer; when there is none it dials one. That
 * connection is discovery's own only when nobody else had one to the peer or was dialing
 * it; it is closed once its last request is done, libp2p's housekeeping streams on it
 * (identify, which the answering node needs for our addresses) have finished, and it has
 * stayed idle for `idleLinger`, or at once when the node holds another connection to the
 * peer or more than `maxRequestConnections` such connections. A connection that somebody
 * else starts using (a stream of another protocol, `keepConnection`, `claim`) is left
 * alone from then on, and one discovery did not open is never closed here.
 */
export class RequestConnections {
  private readonly connectionManager: ConnectionManager
  private readonly init: RequestConnectionsInit
  private readonly log: Logger
  private readonly counters: Counters
  private readonly maxOwned: number
  // BOUNDED: one entry per open connection this client dialed, removed when it closes or
  // is handed over; past maxRequestConnections idle ones are closed, so ≤ that plus those
  // with requests in flight
  private readonly owned = new Map<string, Owned>()
  // BOUNDED: one entry per dial in flight (≤ requests in flight)
  private readonly dialing = new Map<string, Promise<Connection>>()
  // BOUNDED: weak; connections this client is closing, which must not be reused meanwhile
  private readonly closing = new WeakSet<Connection>()
  private shutdown = newShutdown()

  constructor (connectionManager: ConnectionManager, init: RequestConnectionsInit, log: Logger, counters: Counters) {
    this.connectionManager = connectionManager
    this.init = init
    this.log = log
    this.counters = counters
    this.maxOwned = init.maxRequestConnections ?? MAX_REQUEST_CONNECTIONS
  }

  /** Re-arms after `stop()`. */
  start (): void {
    if (this.shutdown.signal.aborted) {
      this.shutdown = newShutdown()
    }
  }

  /** Ends every linger, so the connections discovery opened close now. */
  stop (): void {
    // lingering connections close at once; those still in use close when released
    this.shutdown.abort()
  }

  /**
   * A connection to `peer` for one request: an open one if there is, else a new one to
   * `addrs` (or to what the peer store knows when `addrs` is empty). `lost` is a
   * connection that just failed a request: never handed out again. With `atAddrs`, only
   * a connection to one of `addrs` will do (one we dialed there, or an inbound one from
   * the IP of one of them), so an answer over it proves the peer is reachable there.
   * Pair with `release`.
   */
  async acquire (peer: PeerId, addrs: Multiaddr[], options: AbortOptions, lost?: Connection, atAddrs = false): Promise<Lease> {
    const targets = dialTargets(peer, addrs)
    if (atAddrs && targets.length === 0) {
      throw new InvalidParametersError(`no address of ${peer} to check`)
    }
    const open = this.openConnections(peer)
    const usable = open.find(c => c !== lost && (!atAddrs || reaches(c, targets)))
    if (usable != null) {
      return this.lease(usable)
    }
    const key = peer.toString()
    const ours = this.dialing.get(key)
    if (ours != null && !atAddrs && lost == null) {
      // another request of ours is dialing the peer: share its connection
      return this.lease(await raceSignal(ours, options.signal))
    }
    // a connection on its way out, one that failed a request, or one that cannot prove
    // the addresses still looks open to the connection manager, which would hand it back
    const force = this.connectionManager.getConnections(peer).some(c => c.status === 'open')
    // a dial somebody else had started (which ours joins), or a connection that was there
    // before, is never ours
    const theirs = this.connectionManager.getDialQueue().some(dial => dial.peerId?.equals(peer) === true)
    const before = new Set(this.connectionManager.getConnections(peer).map(c => c.id))
    const dial = this.connectionManager.openConnection(targets.length > 0 ? targets : peer, { ...options, force })
    if (!theirs) {
      this.dialing.set(key, dial)
    }
    let connection: Connection
    try {
      connection = await dial
    } catch (err) {
      if (!theirs) {
        this.keepAbandoned(peer, before)
      }
      throw err
    } finally {
      if (this.dialing.get(key) === dial) {
        this.dialing.delete(key)
      }
    }
    // an inbound connection that appeared meanwhile is the remote's, never ours
    const dialed = connection.direction === 'outbound' && !before.has(connection.id)
    if (!theirs && dialed) {
      this.own(connection)
    }
    return { ...this.lease(connection), dialed }
  }

  /** Ends one request's use of a connection from `acquire`. */
  release (lease: Lease): void {
    if (!lease.owned) {
      return
    }
    const entry = this.owned.get(lease.connection.id)
    if (entry == null) {
      return
    }
    entry.refs--
    if (entry.refs === 0) {
      this.idle(entry)
    }
  }

  /**
   * Our dial was given up (the request's deadline or signal) while libp2p's dial went on:
   * libp2p stops waiting at once, but a connection that got through before the abort stays
   * registered, and nobody would ever close it. It is ours: it closes like any other.
   */
  private keepAbandoned (peer: PeerId, before: Set<string>): void {
    for (const connection of this.connectionManager.getConnections(peer)) {
      if (connection.direction === 'outbound' && connection.status === 'open' && !before.has(connection.id) && !this.owned.has(connection.id)) {
        this.counters.increment('connectionsAbandoned')
        this.idle(this.own(connection))
      }
    }
  }

  private idle (entry: Owned): void {
    entry.idleSince = Date.now()
    this.closeWhenIdle(entry).catch(err => {
      this.log.error('could not close request connection to %p - %e', entry.connection.remotePeer, err)
    })
  }

  /**
   * Hands a connection discovery opened for its requests over to somebody else (the
   * auto-dialer, which keeps it as a peer): from now on it is never closed here. False
   * when it was not discovery's.
   */
  claim (connection: Connection): boolean {
    const entry = this.owned.get(connection.id)
    if (entry == null) {
      return false
    }
    this.handOver(entry, 'claimed')
    return true
  }

  /** Whether `connection` is one discovery opened for its requests and still owns. */
  owns (connection: Connection): boolean {
    return this.owned.has(connection.id)
  }

  /** How many connections discovery holds open for its requests. */
  get size (): number {
    return this.owned.size
  }

  /** The peer's open connections a request may use. */
  private openConnections (peer: PeerId): Connection[] {
    return this.connectionManager.getConnections(peer).filter(c => c.status === 'open' && c.limits == null && !this.closing.has(c))
  }

  private own (connection: Connection): Owned {
    const entry: Owned = { connection, refs: 0, idleSince: Date.now() }
    this.owned.set(connection.id, entry)
    this.counters.increment('connectionsOpened')
    this.log('opened request connection %s to %p', connection.id, connection.remotePeer)
    connection.addEventListener('close', () => {
      this.owned.get(connection.id)?.wake?.(false)
      this.owned.delete(connection.id)
    }, { once: true })
    return entry
  }

  /** A lease on `connection`, a share of it if discovery owns it. */
  private lease (connection: Connection): Lease {
    const entry = this.owned.get(connection.id)
    if (entry == null || entry.evicted === true) {
      return { connection, owned: false }
    }
    entry.refs++
    entry.wake?.(true)
    return { connection, owned: true }
  }

  /** Past `maxRequestConnections`, wakes the idle connections used longest ago, which close. */
  private trim (): void {
    const kept = [...this.owned.values()].filter(e => e.evicted !== true)
    let excess = kept.length - this.maxOwned
    if (excess <= 0) {
      return
    }
    const lingering = kept.filter(e => e.refs === 0 && e.wake != null).sort((a, b) => a.idleSince - b.idleSince)
    for (const entry of lingering) {
      if (excess-- <= 0) {
        break
      }
      entry.evicted = true
      entry.wake?.(false)
    }
  }

  private stillIdle (entry: Owned): boolean {
    return entry.refs === 0 && entry.connection.status === 'open' && this.owned.get(entry.connection.id) === entry
  }

  private async closeWhenIdle (entry: Owned): Promise<void> {
    const { connection } = entry
    const linger = deadline(this.init.linger, () => new Error('linger over'), this.shutdown.signal)
    try {
      await this.waitUntilIdle(entry, linger.signal)
    } finally {
      linger.clear()
    }
    if (!this.stillIdle(entry) || await this.reusedWhileIdle(entry) || !this.stillIdle(entry)) {
      return
    }
    // a second connection of the pair is nobody's to keep: the pair has one already
    if (!this.duplicate(connection) && this.init.keepConnection?.(connection) === true) {
      this.handOver(entry, 'kept')
      return
    }
    this.owned.delete(connection.id)
    this.closing.add(connection)
    this.counters.increment('connectionsClosed')
    this.log('closing request connection %s to %p', connection.id, connection.remotePeer)
    try {
      await connection.close({ signal: AbortSignal.timeout(this.init.linger) })
    } catch (err: any) {
      connection.abort(err)
    }
  }

  /**
   * Keeps an idle connection for `idleLinger` while the node has room (under a quarter of
   * its `maxConnections`), it is not the one idle longest past `maxRequestConnections`,
   * and the node has no other connection to the peer; true when a request took it again
   * meanwhile.
   */
  private async reusedWhileIdle (entry: Owned): Promise<boolean> {
    const idle = this.init.idleLinger ?? 0
    const { connectionManager } = this
    if (idle <= 0 || this.duplicate(entry.connection) || connectionManager.getConnections().length * 4 >= connectionManager.getMaxConnections()) {
      return false
    }
    const wait = deadline(idle, () => new Error('idle linger over'), this.shutdown.signal)
    let onAbort: (() => void) | undefined
    try {
      return await new Promise<boolean>(resolve => {
        onAbort = () => { resolve(false) }
        entry.wake = resolve
        wait.signal.addEventListener('abort', onAbort, { once: true })
        // past the budget, the connection idle longest goes: maybe this one
        this.trim()
      })
    } finally {
      if (onAbort != null) {
        wait.signal.removeEventListener('abort', onAbort)
      }
      entry.wake = undefined
      wait.clear()
    }
  }

  /** Whether the node holds another open connection to the same peer. */
  private duplicate (connection: Connection): boolean {
    return this.connectionManager.getConnections(connection.remotePeer).some(c => c !== connection && c.status === 'open')
  }

  /**
   * Waits while the connection's only streams are our requests (either way) and libp2p's
   * housekeeping; hands it over as soon as another protocol uses it.
   */
  private async waitUntilIdle (entry: Owned, signal: AbortSignal): Promise<void> {
    const { connection } = entry
    while (entry.refs === 0 && connection.status === 'open' && !signal.aborted) {
      const busy = connection.streams.filter(s => s.status === 'open')
      if (busy.some(s => s.protocol !== '' && s.protocol !== this.init.protocol && !HOUSEKEEPING_PROTOCOLS.has(s.protocol))) {
        this.handOver(entry, 'in use by another protocol')
        return
      }
      // identify's exchange is worth its wait (the answering node needs our addresses);
      // the rest of the housekeeping (a ping every 10 s) never keeps the connection for us
      const awaited = busy.filter(s => s.protocol === '' || s.protocol === this.init.protocol || IDENTIFY_PROTOCOLS.has(s.protocol))
      if (awaited.length === 0) {
        break
      }
      await nextEvent(awaited, 'close', signal)
    }
  }

  private handOver (entry: Owned, why: string): void {
    entry.wake?.(true)
    this.owned.delete(entry.connection.id)
    this.counters.increment('connectionsHandedOver')
    this.log('leaving connection %s to %p open: %s', entry.connection.id, entry.connection.remotePeer, why)
  }
}

function newShutdown (): AbortController {
  const controller = new AbortController()
  // one listener per lingering connection
  setMaxListeners(Infinity, controller.signal)
  return controller
}

/** A multiaddr without its trailing `/p2p/<peer>`, as a string. */
function withoutPeer (ma: Multiaddr): string {
  const components = ma.getComponents()
  return components[components.length - 1]?.code === CODE_P2P ? ma.decapsulateCode(CODE_P2P).toString() : ma.toString()
}

/**
 * Whether `connection` reaches `peer` at one of `addrs`, as an `atAddrs` request demands:
 * one we dialed to one of them, or an inbound one from the IP of one of them.
 */
export function reachesAddrs (connection: Connection, peer: PeerId, addrs: Multiaddr[]): boolean {
  return connection.remotePeer.equals(peer) && reaches(connection, dialTargets(peer, addrs))
}

/**
 * Whether an answer over `connection` proves the peer reachable at one of `targets`: we
 * dialed it there, or it dialed us from the IP of one of them (a TCP dialer's port is an
 * ephemeral one, but its IP is where the entry says it is; a second connection to check
 * the port would double the pair's connections).
 */
function reaches (connection: Connection, targets: Multiaddr[]): boolean {
  if (connection.direction === 'outbound') {
    const remote = withoutPeer(connection.remoteAddr)
    return targets.some(t => withoutPeer(t) === remote)
  }
  const ip = ipOf(connection.remoteAddr)
  return ip != null && targets.some(t => {
    const listed = ipOf(t)
    return listed != null && uint8ArrayEquals(listed, ip)
  })
}

/** `addrs` with `/p2p/<peer>` appended where missing, so the dial verifies who answers. */
function dialTargets (peer: PeerId, addrs: Multiaddr[]): Multiaddr[] {
  const out: Multiaddr[] = []
  for (const ma of addrs) {
    const components = ma.getComponents()
    // only a trailing /p2p names the target: a relay address has the relay's inside
    const last = components[components.length - 1]
    if (last?.code !== CODE_P2P) {
      out.push(ma.encapsulate(`/p2p/${peer.toString()}`))
    } else if (last.value === peer.toString()) {
      out.push(ma)
    }
  }
  return out
}
