import { setMaxListeners } from 'node:events'
import { InvalidParametersError } from '@libp2p/interface'
import { CODE_P2P } from '@multiformats/multiaddr'
import { deadline, nextEvent } from './deadline.js'
import type { Counters } from './counters.js'
import type { AbortOptions, Connection, Logger, PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * Protocols whose streams do not make a connection worth keeping: libp2p runs them on
 * every new connection (the same list as libp2p's `safelyCloseConnectionIfUnused`).
 */
export const HOUSEKEEPING_PROTOCOLS = new Set([
  '/ipfs/id/1.0.0',
  '/ipfs/id/push/1.0.0',
  '/libp2p/autonat/1.0.0',
  '/libp2p/dcutr'
])

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
  /** Asked before a request-only connection is closed; `true` keeps it. */
  keepConnection?(connection: Connection): boolean
}

interface Owned {
  connection: Connection
  /** Requests of ours using it now. */
  refs: number
  /** Wakes an idle linger when a request takes the connection again. */
  reused?: () => void
}

/** A connection for one request, and whether this request owns a share of it. */
export interface Lease {
  connection: Connection
  /** Whether the connection was opened for discovery and is closed after its last request. */
  owned: boolean
}

/**
 * The connection policy of DESIGN.md §6: a request reuses any open connection to the
 * peer; when there is none it dials one, and that connection is discovery's own: once
 * the last request on it is done and libp2p's housekeeping streams on it (identify, which
 * the answering node needs for our addresses) have finished, it is closed, so request
 * connections never pile up against a busy node's `maxConnections`. A connection that
 * somebody else starts using (a stream of another protocol, or `keepConnection`) is left
 * alone from then on.
 */
export class RequestConnections {
  private readonly connectionManager: ConnectionManager
  private readonly init: RequestConnectionsInit
  private readonly log: Logger
  private readonly counters: Counters
  // BOUNDED: one entry per open connection this client dialed, removed when it closes or
  // is handed over; so ≤ the connection manager's maxConnections
  private readonly owned = new Map<string, Owned>()
  // BOUNDED: weak; connections this client is closing, which must not be reused meanwhile
  private readonly closing = new WeakSet<Connection>()
  private shutdown = newShutdown()

  constructor (connectionManager: ConnectionManager, init: RequestConnectionsInit, log: Logger, counters: Counters) {
    this.connectionManager = connectionManager
    this.init = init
    this.log = log
    this.counters = counters
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
   * a connection we dialed to one of `addrs` will do, so an answer over it proves the
   * peer is reachable there. Pair with `release`.
   */
  async acquire (peer: PeerId, addrs: Multiaddr[], options: AbortOptions, lost?: Connection, atAddrs = false): Promise<Lease> {
    const targets = dialTargets(peer, addrs)
    if (atAddrs && targets.length === 0) {
      throw new InvalidParametersError(`no address of ${peer} to check`)
    }
    const open = this.connectionManager.getConnections(peer).filter(c => c.status === 'open')
    // a transport may or may not put /p2p on a connection's remote address: compare without
    const listed = atAddrs ? new Set(targets.map(withoutPeer)) : undefined
    const usable = open.find(c => c.limits == null && c !== lost && !this.closing.has(c) &&
      (listed == null || (c.direction === 'outbound' && listed.has(withoutPeer(c.remoteAddr)))))
    if (usable != null) {
      return this.lease(usable, false)
    }
    // a connection on its way out still looks open to the connection manager, which would
    // hand it back: dial past it
    const force = open.length > 0
    const connection = await this.connectionManager.openConnection(targets.length > 0 ? targets : peer, { ...options, force })
    // another request may have dialed it concurrently (the dial queue hands both the same
    // one); an inbound connection that appeared meanwhile is the remote's, never ours
    return this.lease(connection, connection.direction === 'outbound')
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
      this.closeWhenIdle(entry).catch(err => {
        this.log.error('could not close request connection to %p - %e', entry.connection.remotePeer, err)
      })
    }
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

  /** How many connections discovery holds open for its requests. */
  get size (): number {
    return this.owned.size
  }

  /** A lease on `connection`; `dialed` when this client just dialed it, so it may own it. */
  private lease (connection: Connection, dialed: boolean): Lease {
    let entry = this.owned.get(connection.id)
    if (entry == null && dialed) {
      entry = { connection, refs: 0 }
      this.owned.set(connection.id, entry)
      this.counters.increment('connectionsOpened')
      this.log('opened request connection %s to %p', connection.id, connection.remotePeer)
      connection.addEventListener('close', () => {
        this.owned.delete(connection.id)
      }, { once: true })
    }
    if (entry == null) {
      return { connection, owned: false }
    }
    entry.refs++
    entry.reused?.()
    return { connection, owned: true }
  }

  private async closeWhenIdle (entry: Owned): Promise<void> {
    const { connection } = entry
    const linger = deadline(this.init.linger, () => new Error('linger over'), this.shutdown.signal)
    try {
      await this.waitUntilIdle(entry, linger.signal)
    } finally {
      linger.clear()
    }
    if (entry.refs > 0 || connection.status !== 'open' || this.owned.get(connection.id) !== entry) {
      return
    }
    if (await this.reusedWhileIdle(entry)) {
      return
    }
    if (entry.refs > 0 || connection.status !== 'open' || this.owned.get(connection.id) !== entry) {
      return
    }
    if (this.init.keepConnection?.(connection) === true) {
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
   * its `maxConnections`); true when a request took it again meanwhile.
   */
  private async reusedWhileIdle (entry: Owned): Promise<boolean> {
    const idle = this.init.idleLinger ?? 0
    const { connectionManager } = this
    if (idle <= 0 || connectionManager.getConnections().length * 4 >= connectionManager.getMaxConnections()) {
      return false
    }
    const wait = deadline(idle, () => new Error('idle linger over'), this.shutdown.signal)
    let onClose: (() => void) | undefined
    try {
      return await new Promise<boolean>(resolve => {
        onClose = () => { resolve(false) }
        entry.reused = () => { resolve(true) }
        wait.signal.addEventListener('abort', onClose, { once: true })
        entry.connection.addEventListener('close', onClose, { once: true })
      })
    } finally {
      // a connection reused every few seconds would otherwise gain a listener per wait
      if (onClose != null) {
        entry.connection.removeEventListener('close', onClose)
        wait.signal.removeEventListener('abort', onClose)
      }
      entry.reused = undefined
      wait.clear()
    }
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
      if (busy.length === 0) {
        break
      }
      await nextEvent(busy, 'close', signal)
    }
  }

  private handOver (entry: Owned, why: string): void {
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

/**
 * Whether a connection carries nothing but `protocol` and libp2p's housekeeping streams
 * (ignoring `except`): nobody else would miss it.
 */
export function onlyDiscovery (connection: Connection, protocol: string, except?: Stream): boolean {
  return connection.streams.every(s => s === except || s.status !== 'open' || s.protocol === '' ||
    s.protocol === protocol || HOUSEKEEPING_PROTOCOLS.has(s.protocol))
}

/** A multiaddr without its trailing `/p2p/<peer>`, as a string. */
function withoutPeer (ma: Multiaddr): string {
  const components = ma.getComponents()
  return components[components.length - 1]?.code === CODE_P2P ? ma.decapsulateCode(CODE_P2P).toString() : ma.toString()
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
