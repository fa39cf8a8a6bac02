import { setMaxListeners, TimeoutError } from '@libp2p/interface'
import {
  DIAL_IP_LIMIT, DIAL_SUBNET, DIAL_TAG, DIAL_TAG_RENEW_INTERVAL, DIAL_TAG_TTL, DIAL_TAG_VALUE, IPV6_SUBNET, MAX_DIAL_BACKOFF,
  MAX_DIAL_HISTORY, MIN_IDLE_PULL_DELAY
} from '../constants.js'
import { deadline } from '../protocol/deadline.js'
import { DistinctNetSet, netAddressOf } from '../table/ip-limits.js'
import { DialTarget } from './dial-target.js'
import type { AutoDialInit } from './init.js'
import type { NetAddress } from '../table/ip-limits.js'
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
  /** Fresh candidates: the service's `randomNodes()` (table reads, then random lookups). */
  candidates(options: AbortOptions): AsyncGenerator<PeerInfo>
  /** Waits `ms`, cancelled by the signal (the service owns the timers). */
  sleep(ms: number, options: AbortOptions): Promise<void>
  /** The clock. */
  now(): number
  /** Time limit of one dial, ms. */
  dialTimeout: number
  /** Whether LAN and loopback peers are exempt from the per-subnet limit of dialed peers. */
  allowLan: boolean
  /**
   * The longest wait between candidate pulls once the candidates hold nothing new (the
   * service's `refreshInterval`): each pull past the table is a random lookup.
   */
  maxIdleDelay: number
  /**
   * Takes over a connection that discovery opened for its requests, so it stays open as a
   * dialed peer; false when it was not a request connection (the client's `claimConnection`).
   */
  claimRequestConnection?(connection: Connection): boolean
  /**
   * Whether a peer is one of the node's bootnodes: an entry point, not a peer to keep. It is
   * dialed only when a round of candidates left room for it, never counted towards the
   * target, and shed first.
   */
  isBootnode?(peer: PeerId): boolean
  /** Waits while the node's own event loop is overloaded (bounded); the service's `whenCalm`. */
  whenCalm?(options: AbortOptions): Promise<void>
  /**
   * The node's own event-loop utilisation over the last second, 0 to 1 (the service's load
   * gauge): the dial target shrinks while it is overloaded and grows back once it is calm.
   */
  load?(): number
}

/** What the auto-dialer did, for tests and metrics. */
export interface AutoDialerStats {
  /** Dials started. */
  dials: number
  /** Dials that connected. */
  connected: number
  /** Dials that failed. */
  failed: number
  /** Candidates passed over: self, connected, being dialed, or without an address. */
  skipped: number
  /** Candidates passed over because they were dialed recently or their dial failed recently. */
  backedOff: number
  /** Candidates passed over because two peers of their subnet are dialed already. */
  subnetFull: number
  /** Request connections kept as dialed peers when the request code asked (see `adopt`). */
  adopted: number
  /** Request connections claimed as dialed peers when their peer came up as a candidate. */
  claimed: number
  /** Dials that timed out, but whose connection opened all the same: kept as dialed. */
  abandoned: number
  /** Bootnodes passed over as candidates while a round could still bring other peers. */
  bootnodesDeferred: number
  /** Waits because the candidates held nothing new. */
  idleWaits: number
  /** Times every dialed connection was lost, and the dialer started over from the table. */
  recoveries: number
  /** Times an overloaded node halved its dial target. */
  targetShrunk: number
  /** Dialed connections closed because the target shrank below them, or to bootnodes the target no longer needs. */
  shed: number
}

/** A connection the dialer is responsible for: it dialed it, or adopted or claimed it. */
interface DialedConnection {
  connection: Connection
  /** The remote peer, as a string. */
  peer: string
  /** Where it is counted in the per-subnet limit. */
  address: NetAddress
  /** Whether the peer is a bootnode: held only while the target needs it. */
  bootnode: boolean
}

/** When a peer may be dialed again, and how many of its dials failed in a row. */
interface DialRecord {
  retryAt: number
  failures: number
}

// how long to wait for a dial to end or a connection to close before looking at the count again anyway
const RECHECK_INTERVAL = 5000
// a pull that brings no candidate for this long is random lookups finding nothing: stop them
// (a lookup takes a few requestTimeouts at worst, and then hands out what it found)
const PULL_LIMIT = 15_000

/** The candidate stream and what stops it. */
interface CandidateStream {
  controller: AbortController
  candidates: AsyncGenerator<PeerInfo>
  detach(): void
}

/**
 * Keeps the node connected (DESIGN.md §8), after geth's dial scheduler: libp2p v3 has no
 * auto-dialer, so a discovered peer only lands in the peer store.
 *
 * The target counts only the outbound connections the dialer is responsible for (geth
 * counts dialed peers only, `MaxPeers / DialRatio`: the defence against the
 * connection-monopoly eclipse): those it dialed, and request connections it adopted or
 * claimed. Inbound connections and discovery's request connections never count, so peers
 * that dial in cannot stop it from dialing. While it holds fewer than `minConnections`, it
 * reads fresh random nodes and dials them, at most `maxParallelDials` at once and never
 * past the connection manager's `maxConnections`. It never dials itself, a peer it is
 * connected to in either direction (one connection per pair of nodes; two nodes whose dials
 * cross can still end up with two, as libp2p has no tie-break), one being dialed,
 * one dialed within `dialHistoryExpiration`, one whose dial failed recently (the wait
 * doubles per failure, up to 30 minutes), nor a third peer of one /24 (IPv6 /48; LAN and
 * loopback exempt unless `allowLan: false`), with the table's subnet rules.
 *
 * When its candidates hold nothing new (every one skipped, e.g. a network smaller than
 * the target), it waits before pulling more, since a pull past the table is a random
 * lookup: 1 s, doubling up to `refreshInterval`; a node entering the table (`nodeAdded`)
 * or a dialed connection closing starts it over at 1 s. A stream that yields nothing for
 * 15 s (lookups into an empty table whose seeds are gone) is stopped and started over after
 * the same wait. Losing every dialed connection
 * also forgets the failure backoffs and re-reads the table from the start, so a node whose
 * peers all restarted dials its way back without a restart (an empty table is refilled
 * from seeds and bootnodes by the service's `randomNodes`).
 *
 * Bootnodes (`isBootnode`) are entry points, not peers to keep: every node's first
 * requests go to them, so a dialer that kept those connections for good would make them
 * hubs. A young node's request connections to its bootnodes are adopted (its lookups keep
 * asking them while its table is small), but a bootnode never counts towards the target,
 * is dialed only when a round of candidates ended with room for it, and is shed first:
 * as soon as the target is met without it.
 *
 * Dialed peers carry the `kad-discovery` tag in the peer store (value 20, renewed while
 * the connection lives, removed when it closes), so libp2p's pruner closes inbound and
 * request connections first.
 *
 * Beyond geth, the target follows the node's own load (`fitTarget`): after 30 s of an
 * overloaded event loop it halves (at most every 10 s, down to `MIN_DIAL_TARGET`) and the
 * newest dialed connections above it close; below half busy it grows by one every 10 s.
 */
export class AutoDialer implements Startable {
  private readonly components: AutoDialerComponents
  private readonly init: AutoDialerInit
  private readonly log: Logger
  // BOUNDED: ≤ maxParallelDials entries, keyed by peer id
  private readonly dialing = new Map<string, Promise<void>>()
  // BOUNDED: ≤ minConnections + maxParallelDials + the bootnodes (added only below the
  // target, which bootnodes do not count towards), keyed by connection id, removed when
  // the connection closes
  private readonly dialed = new Map<string, DialedConnection>()
  // BOUNDED: ≤ the bootnodes, keyed by peer id; cleared when the round ends
  private readonly deferred = new Map<string, PeerInfo>()
  // BOUNDED: ≤ MAX_DIAL_HISTORY entries (the oldest goes first), keyed by peer id; an
  // entry leaves once its retry time passed (failed ones MAX_DIAL_BACKOFF later)
  private readonly history = new Map<string, DialRecord>()
  // BOUNDED: one entry per subnet of the dialed peers and dials in flight
  private subnets: DistinctNetSet
  // BOUNDED: the candidates seen since the stream last wrapped around; cleared then, and
  // at MAX_DIAL_HISTORY entries
  private readonly round = new Set<string>()
  private idleDelay = MIN_IDLE_PULL_DELAY
  private restartCandidates = false
  private controller?: AbortController
  private loop?: Promise<void>
  private renewal?: Promise<void>
  private wakeLoop?: () => void
  private wakeIdle?: () => void
  // minConnections, less while the node's own event loop is overloaded
  private readonly dialTarget: DialTarget
  readonly stats: AutoDialerStats = {
    dials: 0, connected: 0, failed: 0, skipped: 0, backedOff: 0, subnetFull: 0, adopted: 0, claimed: 0, abandoned: 0, bootnodesDeferred: 0, idleWaits: 0, recoveries: 0, targetShrunk: 0, shed: 0
  }

  constructor (components: AutoDialerComponents, init: AutoDialerInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('libp2p:kad-discovery:dialer')
    this.subnets = this.newSubnets()
    this.dialTarget = new DialTarget(init.minConnections)
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
    this.renewal = this.renewTags(signal).catch(err => {
      if (!signal.aborted) {
        this.log.error('tag renewal stopped - %e', err)
      }
    })
  }

  /**
   * Stops dialing and waits for dials in flight to end. Dialed connections stay open;
   * their tags lapse after `DIAL_TAG_TTL` unless a new start dials them again.
   */
  async stop (): Promise<void> {
    if (this.controller == null) {
      return
    }
    this.controller.abort()
    this.controller = undefined
    this.components.events.removeEventListener('connection:close', this.onConnectionClose)
    this.wakeLoop?.()
    this.wakeIdle?.()
    await this.loop
    await this.renewal
    await Promise.allSettled(this.dialing.values())
    this.dialing.clear()
    this.dialed.clear()
    this.history.clear()
    this.round.clear()
    this.deferred.clear()
    this.subnets = this.newSubnets()
    this.idleDelay = MIN_IDLE_PULL_DELAY
    this.dialTarget.reset()
  }

  /** How many connections the dialer holds (dialed, adopted or claimed, still open), bootnodes included. */
  get outbound (): number {
    return this.dialed.size
  }

  /**
   * How many dialed connections the dialer keeps now: `minConnections`, halved (down to
   * `MIN_DIAL_TARGET`) at most every 10 s once the node's own event loop has stayed
   * overloaded for 30 s, and raised by one every 10 s while it is below half busy.
   */
  get target (): number {
    return this.dialTarget.value
  }

  /** The connections that count towards the target. */
  dialedConnections (): Connection[] {
    return [...this.dialed.values()].map(d => d.connection)
  }

  /**
   * Whether a connection that discovery opened only for a request should be kept as a
   * dialed peer instead of closed (it saves a dial): yes while the dialer is below its
   * target, the connection is outbound and open, the pair has no other open connection,
   * and its subnet has room. A kept connection counts, and is tagged, as dialed; one to
   * a bootnode is held only while the target leaves room for it, bootnodes included.
   */
  adopt (connection: Connection): boolean {
    if (this.controller == null || connection.status !== 'open' || connection.direction !== 'outbound') {
      return false
    }
    if (this.dialed.has(connection.id)) {
      return true
    }
    // a second connection of the pair (the peer dialed us meanwhile) is no peer to keep
    const others = this.components.connectionManager.getConnections(connection.remotePeer).filter(c => c !== connection && c.status === 'open')
    if (others.length > 0 || !this.take(connection)) {
      return false
    }
    this.stats.adopted++
    return true
  }

  /**
   * A node entered the table: candidates may hold something new, so the wait between
   * candidate pulls starts over at 1 s (the service calls this from the table's hook).
   */
  nodeAdded (): void {
    this.resetIdle()
  }

  private isBootnode (peer: PeerId): boolean {
    return this.init.isBootnode?.(peer) ?? false
  }

  /**
   * Whether the target leaves room for one more bootnode, dialed or adopted: counting
   * every connection held, the bootnodes too, or one shed for a newcomer would come back.
   */
  private roomForBootnode (): boolean {
    return this.dialed.size + this.dialing.size < this.dialTarget.value
  }

  /** The dialed connections that count towards the target: all but those to bootnodes. */
  private counted (): number {
    let count = 0
    for (const { bootnode } of this.dialed.values()) {
      if (!bootnode) {
        count++
      }
    }
    return count
  }

  private newSubnets (): DistinctNetSet {
    return new DistinctNetSet({ ipv4Subnet: DIAL_SUBNET, ipv6Subnet: IPV6_SUBNET, limit: DIAL_IP_LIMIT, allowLan: this.init.allowLan })
  }

  private resetIdle (): void {
    this.idleDelay = MIN_IDLE_PULL_DELAY
    this.wakeIdle?.()
  }

  private onConnectionClose (evt: CustomEvent<Connection>): void {
    const connection = evt.detail
    this.wakeLoop?.()
    const entry = connection == null ? undefined : this.dialed.get(connection.id)
    if (entry == null) {
      return
    }
    this.dialed.delete(connection.id)
    this.subnets.remove(entry.address)
    if (![...this.dialed.values()].some(d => d.peer === entry.peer)) {
      this.tag(connection.remotePeer, false)
    }
    this.log('dialed connection %s to %p closed, %d left', connection.id, connection.remotePeer, this.dialed.size)
    this.resetIdle()
    if (this.dialed.size === 0) {
      this.recover()
    }
  }

  /**
   * Every dialed connection is gone (all peers restarted, or the network went down): the
   * failure backoffs say nothing about the network that comes back, and the candidate
   * stream's memory of what it handed out would hold the table back, so both start over.
   * The 35 s dial history stays, so a peer that closes on us is not redialed in a loop.
   */
  private recover (): void {
    this.stats.recoveries++
    for (const [peer, record] of this.history) {
      if (record.failures > 0) {
        this.history.delete(peer)
      }
    }
    this.restartCandidates = true
    this.log('lost every dialed connection: dialing from the table again')
  }

  /** Dials still wanted: below the target, and under the connection manager's limit. */
  private wanted (): number {
    const connectionManager = this.components.connectionManager
    if (connectionManager.getConnections().length + this.dialing.size >= connectionManager.getMaxConnections()) {
      return 0
    }
    return this.dialTarget.value - this.counted() - this.dialing.size
  }

  /** Feeds the node's load to the dial target; sheds dialed connections when it shrank. */
  private fitTarget (): void {
    const load = this.init.load?.()
    if (load == null) {
      return
    }
    const change = this.dialTarget.fit(load, this.init.now())
    if (change === 'shrunk') {
      this.stats.targetShrunk++
      this.log('overloaded (%d%% busy): dial target %d', Math.round(load * 100), this.dialTarget.value)
      this.shed()
    } else if (change === 'grown') {
      this.log('calm again: dial target %d', this.dialTarget.value)
    }
  }

  /**
   * Closes the dialed connections above the target, bootnodes first (they do not count
   * towards it, so one is surplus as soon as the target is met without it), then the
   * newest: the longest-lived peers stay.
   */
  private shed (): void {
    // an entry stays until its connection:close event, which frees its subnet and tag
    const open = [...this.dialed.values()].filter(d => d.connection.status === 'open')
    const kept = [...open.filter(d => !d.bootnode), ...open.filter(d => d.bootnode)]
    const surplus = kept.slice(this.dialTarget.value).reverse()
    for (const { connection } of surplus) {
      this.stats.shed++
      // not redialed within dialHistoryExpiration, as any peer just dialed
      this.remember(connection.remotePeer.toString(), 'dialing')
      connection.close().catch(err => { connection.abort(err) })
    }
  }

  private async run (signal: AbortSignal): Promise<void> {
    let stream = this.openStream(signal)
    try {
      while (!signal.aborted) {
        if (this.restartCandidates) {
          this.restartCandidates = false
          await this.closeStream(stream)
          stream = this.openStream(signal)
        }
        this.fitTarget()
        if (this.wanted() <= 0 || this.dialing.size >= this.init.maxParallelDials) {
          await this.waitForChange(signal)
          continue
        }
        // a saturated process puts off its next dial and the random lookup a pull may start,
        // unless it holds fewer dialed peers than the least it keeps under load
        if (this.counted() + this.dialing.size >= this.dialTarget.floor) {
          await this.init.whenCalm?.({ signal })
        }
        if (signal.aborted) {
          return
        }
        const next = await this.pull(stream, signal)
        if (signal.aborted) {
          return
        }
        if (next == null || next.done === true) {
          // nothing at all for a while: the stream is doing random lookups that find
          // nothing (an empty table whose seeds are gone), one a second; stop it, wait,
          // and start over from the table
          await this.closeStream(stream)
          this.considerDeferred(signal)
          await this.idle(signal)
          stream = this.openStream(signal)
          continue
        }
        if (this.wanted() <= 0) {
          continue
        }
        const key = next.value.id.toString()
        if (this.round.has(key) || this.round.size >= MAX_DIAL_HISTORY) {
          // the stream wrapped around (it went past the table, and a random lookup found
          // nothing new): the bootnodes it passed over get their turn, then wait before
          // pulling more, or the pulls become a lookup a second
          this.round.clear()
          this.considerDeferred(signal)
          await this.idle(signal)
        }
        this.round.add(key)
        this.consider(next.value, signal)
      }
    } finally {
      await this.closeStream(stream)
    }
  }

  /** A fresh candidate stream with a signal of its own, so a pull stuck in lookups can be stopped. */
  private openStream (signal: AbortSignal): CandidateStream {
    const controller = new AbortController()
    setMaxListeners(Infinity, controller.signal)
    const onAbort = (): void => { controller.abort() }
    signal.addEventListener('abort', onAbort, { once: true })
    this.round.clear()
    this.deferred.clear()
    return { controller, candidates: this.init.candidates({ signal: controller.signal }), detach: () => { signal.removeEventListener('abort', onAbort) } }
  }

  private async closeStream (stream: CandidateStream): Promise<void> {
    stream.detach()
    stream.controller.abort()
    await stream.candidates.return(undefined).catch(() => {})
  }

  /** The next candidate, or `undefined` when none came within `PULL_LIMIT`. */
  private async pull (stream: CandidateStream, signal: AbortSignal): Promise<IteratorResult<PeerInfo> | undefined> {
    let result: IteratorResult<PeerInfo> | undefined
    // a stream that fails (the service stopped under it) yields nothing, as one that is slow
    const next = stream.candidates.next().then(r => { result = r }, () => {})
    await this.sleepUnless(PULL_LIMIT, [next], signal)
    return result
  }

  /** Waits until a dial ends, a connection closes, or the recheck interval passes. */
  private async waitForChange (signal: AbortSignal): Promise<void> {
    const woken = new Promise<void>(resolve => {
      this.wakeLoop = resolve
      this.wakeIdle = resolve
    })
    await this.sleepUnless(RECHECK_INTERVAL, [woken, ...this.dialing.values()], signal)
    this.wakeLoop = undefined
    this.wakeIdle = undefined
  }

  /** Waits the idle delay, then doubles it; only `resetIdle` (or stop) ends the wait early. */
  private async idle (signal: AbortSignal): Promise<void> {
    const delay = this.idleDelay
    this.idleDelay = Math.min(delay * 2, Math.max(this.init.maxIdleDelay, MIN_IDLE_PULL_DELAY))
    this.stats.idleWaits++
    this.log.trace('nothing new to dial: waiting %d ms', delay)
    const woken = new Promise<void>(resolve => { this.wakeIdle = resolve })
    await this.sleepUnless(delay, [woken], signal)
    this.wakeIdle = undefined
  }

  /** Sleeps `ms` unless one of `events` settles first (or `signal` aborts); the sleep is cancelled either way. */
  private async sleepUnless (ms: number, events: Array<Promise<unknown>>, signal: AbortSignal): Promise<void> {
    if (signal.aborted) {
      return
    }
    // the sleep's own signal: aborted once the wait is over, so no timer outlives it
    const sleep = new AbortController()
    const onAbort = (): void => { sleep.abort() }
    signal.addEventListener('abort', onAbort, { once: true })
    try {
      await Promise.race([
        ...events.map(async e => e.catch(() => {})),
        this.init.sleep(ms, { signal: sleep.signal }).catch(() => {})
      ])
    } finally {
      signal.removeEventListener('abort', onAbort)
      sleep.abort()
    }
  }

  /** Whether `peer` may not be dialed yet; forgets records that ran out. */
  private backedOff (peer: string, now: number): boolean {
    for (const [id, record] of this.history) {
      const forgetAt = record.failures > 0 ? record.retryAt + MAX_DIAL_BACKOFF : record.retryAt
      if (now >= forgetAt) {
        this.history.delete(id)
      }
    }
    const record = this.history.get(peer)
    return record != null && now < record.retryAt
  }

  /**
   * Records a dial: when it starts, the peer waits `dialHistoryExpiration`; a failure makes
   * that wait double per failure in a row (up to MAX_DIAL_BACKOFF); a connection ends the run.
   */
  private remember (peer: string, outcome: 'dialing' | 'connected' | 'failed'): void {
    const previous = this.history.get(peer)?.failures ?? 0
    const failures = outcome === 'failed' ? previous + 1 : outcome === 'connected' ? 0 : previous
    const wait = outcome === 'failed'
      ? Math.min(this.init.dialHistoryExpiration * 2 ** Math.min(failures - 1, 30), MAX_DIAL_BACKOFF)
      : this.init.dialHistoryExpiration
    // re-inserted, so the Map's order is oldest first
    this.history.delete(peer)
    this.history.set(peer, { retryAt: this.init.now() + wait, failures })
    for (const oldest of this.history.keys()) {
      if (this.history.size <= MAX_DIAL_HISTORY) {
        break
      }
      this.history.delete(oldest)
    }
  }

  private consider (peer: PeerInfo, signal: AbortSignal, lastResort = false): void {
    const key = peer.id.toString()
    if (peer.id.equals(this.init.self) || this.dialing.has(key)) {
      this.stats.skipped++
      return
    }
    if (!lastResort && this.isBootnode(peer.id)) {
      this.stats.bootnodesDeferred++
      this.deferred.set(key, peer)
      return
    }
    if (this.backedOff(key, this.init.now())) {
      this.stats.backedOff++
      return
    }
    const connections = this.components.connectionManager.getConnections(peer.id)
    if (connections.length > 0) {
      if (!this.claim(connections)) {
        this.stats.skipped++
      }
      return
    }
    const address = netAddressOf(peer.multiaddrs)
    if (address == null) {
      this.stats.skipped++
      return
    }
    if (!this.subnets.add(address)) {
      this.stats.subnetFull++
      return
    }
    // the dial counts in its subnet from now on: parallel dials cannot overfill one
    this.remember(key, 'dialing')
    this.stats.dials++
    const dial = this.dial(peer, address, signal).finally(() => {
      this.dialing.delete(key)
      this.wakeLoop?.()
    })
    this.dialing.set(key, dial)
  }

  /**
   * A round of candidates ended with room left: the bootnodes it passed over are dialed
   * (a network smaller than the target, or one that is only its bootnodes yet), while
   * there is room for them.
   */
  private considerDeferred (signal: AbortSignal): void {
    for (const peer of this.deferred.values()) {
      if (this.wanted() <= 0 || !this.roomForBootnode() || this.dialing.size >= this.init.maxParallelDials) {
        break
      }
      this.consider(peer, signal, true)
    }
    this.deferred.clear()
  }

  /**
   * A candidate connected only through discovery's own request connection (outbound, so
   * nobody else chose it): claimed from the client rather than skipped. Any other
   * connection means the pair is connected already.
   */
  private claim (connections: Connection[]): boolean {
    const claimRequestConnection = this.init.claimRequestConnection
    const open = connections.filter(c => c.status === 'open')
    const connection = open[0]
    if (claimRequestConnection == null || open.length !== 1 || connection == null || connection.direction !== 'outbound' ||
      this.dialed.has(connection.id)) {
      return false
    }
    const address = netAddressOf([connection.remoteAddr])
    if (address == null || !this.subnets.add(address)) {
      return false
    }
    if (!claimRequestConnection(connection)) {
      this.subnets.remove(address)
      return false
    }
    this.track(connection, address)
    this.stats.claimed++
    return true
  }

  /** Counts in an open outbound connection as dialed, if there is room for it. */
  private take (connection: Connection): boolean {
    // the dialer's loop may be waiting for calm: the target is fitted here too
    this.fitTarget()
    const room = this.isBootnode(connection.remotePeer) ? this.roomForBootnode() : this.counted() + this.dialing.size < this.dialTarget.value
    if (!room) {
      return false
    }
    const peer = connection.remotePeer.toString()
    if ([...this.dialed.values()].some(d => d.peer === peer)) {
      return false
    }
    const address = netAddressOf([connection.remoteAddr])
    if (address == null || !this.subnets.add(address)) {
      return false
    }
    this.track(connection, address)
    this.wakeLoop?.()
    return true
  }

  private track (connection: Connection, address: NetAddress): void {
    this.dialed.set(connection.id, { connection, peer: connection.remotePeer.toString(), address, bootnode: this.isBootnode(connection.remotePeer) })
    this.tag(connection.remotePeer, true)
    if (this.dialed.size > this.dialTarget.value) {
      // a bootnode held while the table was small is no longer needed
      this.shed()
    }
  }

  /** Sets (or removes) the dial tag; a failed peer store write costs only the tag. */
  private tag (peer: PeerId, on: boolean): void {
    const tag = on ? { value: DIAL_TAG_VALUE, ttl: DIAL_TAG_TTL } : undefined
    this.components.peerStore.merge(peer, { tags: { [DIAL_TAG]: tag } })
      .catch(err => { this.log.error('could not %s %p - %e', on ? 'tag' : 'untag', peer, err) })
  }

  /** Renews the tag of every dialed peer well inside its TTL, for as long as the dialer runs. */
  private async renewTags (signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.init.sleep(DIAL_TAG_RENEW_INTERVAL, { signal })
      for (const peer of new Set([...this.dialed.values()].map(d => d.connection.remotePeer))) {
        this.tag(peer, true)
      }
    }
  }

  /**
   * The connection a dial we gave up on (its deadline) opened all the same: libp2p stops
   * waiting at once, but a connection that got through before the abort stays registered
   * and reaches nobody. It is this dial's, so it counts as dialed rather than stay open
   * for nobody.
   */
  private abandoned (peer: PeerId, since: number): Connection | undefined {
    return this.components.connectionManager.getConnections(peer)
      .find(c => c.direction === 'outbound' && c.status === 'open' && c.timeline.open >= since && !this.dialed.has(c.id))
  }

  private async dial (peer: PeerInfo, address: NetAddress, signal: AbortSignal): Promise<void> {
    let connection: Connection
    const started = Date.now()
    try {
      await this.components.peerStore.merge(peer.id, { multiaddrs: peer.multiaddrs }, { signal })
      // a hand-made deadline: on Node 20 an AbortSignal.timeout inside AbortSignal.any can be
      // collected before it fires (nodejs/node#57736), and the dial would have no bound
      const limit = deadline(this.init.dialTimeout, () => new TimeoutError(`dial to ${peer.id.toString()} timed out`), signal)
      try {
        connection = await this.components.connectionManager.openConnection(peer.id, { signal: limit.signal })
      } finally {
        limit.clear()
      }
    } catch (err: any) {
      const late = signal.aborted ? undefined : this.abandoned(peer.id, started)
      if (late == null) {
        this.subnets.remove(address)
        if (!signal.aborted) {
          this.stats.failed++
          this.remember(peer.id.toString(), 'failed')
          this.log.trace('dial to %p failed - %e', peer.id, err)
        }
        return
      }
      this.stats.abandoned++
      connection = late
    }
    // libp2p hands back a connection that was there already (the peer dialed in meanwhile,
    // or a request of ours dialed it): an inbound one is not ours to count
    if (signal.aborted || connection.status !== 'open' || connection.direction !== 'outbound' || this.dialed.has(connection.id)) {
      this.subnets.remove(address)
      return
    }
    this.remember(peer.id.toString(), 'connected')
    // a request of ours may have dialed this very connection at the same moment: it is ours now
    this.init.claimRequestConnection?.(connection)
    this.track(connection, address)
    this.stats.connected++
    this.log('connected to %p, %d dialed', peer.id, this.dialed.size)
  }
}
