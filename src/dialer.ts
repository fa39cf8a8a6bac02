import { setMaxListeners, TimeoutError } from '@libp2p/interface'
import { DIAL_TAG, DIAL_TAG_TTL, DIAL_TAG_VALUE } from './constants.js'
import { deadline } from './protocol/deadline.js'
import type { AutoDialInit } from './init.js'
import type { AbortOptions, ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, PeerInfo, PeerStore, Startable, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'

/** What the auto-dialer uses of libp2p. */
export interface AutoDialerComponents {
  connectionManager: ConnectionManager
  peerStore: PeerStore
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

/** The auto-dialer's settings and its sources, handed in by the service. */
export interface AutoDialerInit extends Required<AutoDialInit> {
  /** The local node: never dialed. */
  self: PeerId
  /** Fresh candidates: the service's `randomNodes()`. */
  candidates(options: AbortOptions): AsyncGenerator<PeerInfo>
  /** Waits `ms`, cancelled by the signal (the service owns the timers). */
  sleep(ms: number, options: AbortOptions): Promise<void>
  /** The clock. */
  now(): number
  /** Time limit of one dial, ms. */
  dialTimeout: number
}

/** What the auto-dialer did, for tests and metrics. */
export interface AutoDialerStats {
  /** Dials started. */
  dials: number
  /** Dials that connected. */
  connected: number
  /** Dials that failed. */
  failed: number
  /** Candidates passed over (self, connected, being dialed, or dialed recently). */
  skipped: number
  /** Request connections kept as peers instead of dialing (see `adopt`). */
  adopted: number
}

// how long to wait for a connection to close before looking at the count again anyway
const RECHECK_INTERVAL = 5000

/**
 * Keeps the node connected (DESIGN.md §8), after geth's dial scheduler: libp2p v3 has no
 * auto-dialer, so a discovered peer only lands in the peer store. While the node has fewer
 * than `minConnections` connected peers, it dials fresh random nodes, at most
 * `maxParallelDials` at once: never itself, a connected peer, one being dialed, or one
 * dialed within `dialHistoryExpiration`; never past the connection manager's
 * `maxConnections`. Dialed peers are tagged `kad-discovery` in the peer store.
 */
export class AutoDialer implements Startable {
  private readonly components: AutoDialerComponents
  private readonly init: AutoDialerInit
  private readonly log: Logger
  // BOUNDED: ≤ maxParallelDials entries
  private readonly dialing = new Map<string, Promise<void>>()
  // BOUNDED: entries older than dialHistoryExpiration are pruned before every dial
  private readonly history = new Map<string, number>()
  private controller?: AbortController
  private loop?: Promise<void>
  private wake?: () => void
  readonly stats: AutoDialerStats = { dials: 0, connected: 0, failed: 0, skipped: 0, adopted: 0 }

  constructor (components: AutoDialerComponents, init: AutoDialerInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('libp2p:kad-discovery:dialer')
    this.onConnectionClose = this.onConnectionClose.bind(this)
  }

  /** Starts dialing in the background. */
  start (): void {
    if (this.controller != null) {
      return
    }
    this.controller = new AbortController()
    // every dial, peer store write and wait listens to it
    setMaxListeners(Infinity, this.controller.signal)
    this.components.events.addEventListener('connection:close', this.onConnectionClose)
    const signal = this.controller.signal
    this.loop = this.run(signal).catch(err => {
      if (!signal.aborted) {
        this.log.error('auto-dialer stopped - %e', err)
      }
    })
  }

  /** Stops dialing and waits for dials in flight to end. */
  async stop (): Promise<void> {
    if (this.controller == null) {
      return
    }
    this.controller.abort()
    this.controller = undefined
    this.components.events.removeEventListener('connection:close', this.onConnectionClose)
    this.wake?.()
    await this.loop
    await Promise.allSettled(this.dialing.values())
    this.dialing.clear()
    this.history.clear()
  }

  /**
   * Whether a connection that discovery opened only for a request should be kept as one
   * of the node's peers instead of closed: yes while the node has fewer than
   * `minConnections` peers (it saves a dial). The peer is tagged as if dialed.
   */
  adopt (connection: Connection): boolean {
    if (this.controller == null || connection.status !== 'open') {
      return false
    }
    const peers = new Set(this.components.connectionManager.getConnections().map(c => c.remotePeer.toString()))
    peers.delete(connection.remotePeer.toString())
    if (peers.size + this.dialing.size >= this.init.minConnections) {
      return false
    }
    this.stats.adopted++
    this.history.set(connection.remotePeer.toString(), this.init.now())
    this.components.peerStore.merge(connection.remotePeer, { tags: { [DIAL_TAG]: { value: DIAL_TAG_VALUE, ttl: DIAL_TAG_TTL } } })
      .catch(err => { this.log.error('could not tag %p - %e', connection.remotePeer, err) })
    return true
  }

  private onConnectionClose (): void {
    this.wake?.()
  }

  /** Connected peers plus dials in flight still short of the target? */
  private wanted (): number {
    const connectionManager = this.components.connectionManager
    const connections = connectionManager.getConnections()
    if (connections.length + this.dialing.size >= connectionManager.getMaxConnections()) {
      return 0
    }
    const peers = new Set(connections.map(c => c.remotePeer.toString()))
    return this.init.minConnections - peers.size - this.dialing.size
  }

  private async run (signal: AbortSignal): Promise<void> {
    const candidates = this.init.candidates({ signal })
    try {
      while (!signal.aborted) {
        if (this.wanted() <= 0 || this.dialing.size >= this.init.maxParallelDials) {
          await this.waitForChange(signal)
          continue
        }
        const next = await candidates.next()
        if (next.done === true || signal.aborted) {
          return
        }
        this.consider(next.value, signal)
      }
    } finally {
      await candidates.return(undefined).catch(() => {})
    }
  }

  /** Waits until a dial ends, a connection closes, or the recheck interval passes. */
  private async waitForChange (signal: AbortSignal): Promise<void> {
    const woken = new Promise<void>(resolve => { this.wake = resolve })
    await Promise.race([
      woken,
      ...this.dialing.values(),
      this.init.sleep(RECHECK_INTERVAL, { signal }).catch(() => {})
    ])
    this.wake = undefined
  }

  private consider (peer: PeerInfo, signal: AbortSignal): void {
    const key = peer.id.toString()
    const now = this.init.now()
    for (const [id, at] of this.history) {
      if (now - at >= this.init.dialHistoryExpiration) {
        this.history.delete(id)
      }
    }
    if (peer.id.equals(this.init.self) || this.dialing.has(key) || this.history.has(key) ||
      this.components.connectionManager.getConnections(peer.id).length > 0) {
      this.stats.skipped++
      return
    }
    this.history.set(key, now)
    this.stats.dials++
    const dial = this.dial(peer, signal).finally(() => {
      this.dialing.delete(key)
      this.wake?.()
    })
    this.dialing.set(key, dial)
  }

  private async dial (peer: PeerInfo, signal: AbortSignal): Promise<void> {
    try {
      await this.components.peerStore.merge(peer.id, {
        multiaddrs: peer.multiaddrs,
        tags: { [DIAL_TAG]: { value: DIAL_TAG_VALUE, ttl: DIAL_TAG_TTL } }
      }, { signal })
      // a hand-made deadline: on Node 20 an AbortSignal.timeout inside AbortSignal.any can be
      // collected before it fires (nodejs/node#57736), and the dial would have no bound
      const limit = deadline(this.init.dialTimeout, () => new TimeoutError(`dial to ${peer.id.toString()} timed out`), signal)
      try {
        await this.components.connectionManager.openConnection(peer.id, { signal: limit.signal })
      } finally {
        limit.clear()
      }
      this.stats.connected++
      this.log('connected to %p', peer.id)
    } catch (err: any) {
      this.stats.failed++
      this.log.trace('dial to %p failed - %e', peer.id, err)
    }
  }
}
