import {
  NotStartedError, InvalidParametersError, peerDiscoverySymbol, serviceCapabilities, serviceDependencies, setMaxListeners,
  TypedEventEmitter
} from '@libp2p/interface'
import { anySignal } from 'any-signal'
import { raceSignal } from 'race-signal'
import { CALM_RECHECK, KEY_LENGTH, MAX_CALM_RECHECK, MAX_CALM_WAIT, MAX_EARLY_CONTACTS, MIN_RANDOM_LOOKUP_INTERVAL, NEIGHBOUR_INTRO_INTERVAL, SELF_LOOKUP_REPEAT } from '../constants.js'
import { isPeerFault, ProtocolClient } from '../protocol/client.js'
import { reachesAddrs } from '../protocol/connections.js'
import { LoadGauge } from '../protocol/load.js'
import { ProtocolServer } from '../protocol/server.js'
import { NodeDB } from '../store/node-db.js'
import { keyAtDistance, keyOf } from '../table/key.js'
import { cryptoRandom } from '../table/random.js'
import { nextRevalidateDelay, RevalidationOutcome } from '../table/revalidation.js'
import { Table } from '../table/table.js'
import { AddResult } from '../table/types.js'
import { PeerAnnouncer } from './announcer.js'
import { AutoDialer } from './dialer.js'
import { Lookups } from './findnode-lookups.js'
import { resolveInit } from './init.js'
import { randomNodes } from './iterative-lookup.js'
import { DiscoveryMetrics } from './metrics.js'
import { Scheduler } from './scheduler.js'
import type { KadDiscoveryComponents } from './components.js'
import type { KadDiscoveryInit, ResolvedInit } from './init.js'
import type { LookupNode, LookupResult } from './iterative-lookup.js'
import type { BucketSnapshot, RandomSource, RemoveReason, TableNode } from '../table/types.js'
import type { AbortOptions, Connection, Logger, PeerDiscovery, PeerDiscoveryEvents, PeerId, PeerInfo, Startable } from '@libp2p/interface'
import type { ClearableSignal } from 'any-signal'

export type { KadDiscoveryComponents } from './components.js'

type Task = 'refresh' | 'introduce' | 'selfLookup' | 'revalidate' | 'copy' | 'expire'

/**
 * The discovery service: geth's `Table` loop, lookups and random reads behind libp2p's
 * `PeerDiscovery`. It owns every timer (one, re-armed to the earliest deadline) and every
 * request in flight; the table stays pure.
 */
export class KadDiscovery extends TypedEventEmitter<PeerDiscoveryEvents> implements PeerDiscovery, Startable {
  readonly [peerDiscoverySymbol] = this
  readonly [Symbol.toStringTag] = '@libp2p/kad-discovery'
  readonly [serviceCapabilities]: string[] = ['@libp2p/peer-discovery']
  readonly [serviceDependencies]: string[] = ['@libp2p/identify']

  private readonly init: ResolvedInit
  private readonly log: Logger
  private readonly random: RandomSource = cryptoRandom()
  private readonly now = (): number => Date.now()
  private readonly table: Table
  private readonly db: NodeDB
  private readonly client: ProtocolClient
  private readonly server: ProtocolServer
  private readonly dialer?: AutoDialer
  private readonly metrics: DiscoveryMetrics

  private readonly scheduler: Scheduler<Task>
  private readonly announcer: PeerAnnouncer
  private running = false
  private controller = new AbortController()
  private refreshing?: Promise<void>
  /** Resolves once the running refresh has loaded its seeds and done its self lookup. */
  private refreshSeeded?: Promise<void>
  private readonly lookups: Lookups
  /** Our own event loop's recent load: background work waits while it is overloaded. */
  private readonly load = new LoadGauge()
  /** Background steps put off for load (`whenCalm`'s waits), for tests and metrics. */
  private deferred = 0
  /** Refreshes whose lookups after the self lookup were dropped for lasting overload. */
  private refreshesCut = 0
  // BOUNDED: ≤ MAX_EARLY_CONTACTS, the oldest dropped first; emptied when initDone is set
  private readonly earlyContacts = new Map<string, PeerInfo>()
  /** ms until the next repeated self lookup; none once the neighbourhood settled. */
  private selfLookupDelay?: number
  /** When revalidation may next check an entry that already passed a check (clock ms). */
  private nextProvenCheck = 0
  /** The table's closest nodes to us when the last self lookup ended. */
  private neighboursAtSelfLookup?: string

  constructor (components: KadDiscoveryComponents, init: KadDiscoveryInit = {}) {
    super()
    this.init = resolveInit(init)
    this.log = components.logger.forComponent('libp2p:kad-discovery')
    this.metrics = new DiscoveryMetrics(components.metrics)
    this.scheduler = new Scheduler<Task>(this.now, (task, err) => {
      if (this.running) {
        this.log.error('%s failed - %e', task, err)
      }
    })
    this.announcer = new PeerAnnouncer(components.peerStore, this.log, info => {
      this.safeDispatchEvent('peer', { detail: info })
    }, () => this.running)
    this.table = new Table({
      ...this.init,
      self: components.peerId,
      clock: this.now,
      random: this.random,
      onNodeAdded: node => {
        this.announcer.announce(node)
        this.dialer?.nodeAdded()
      },
      onNodeUpdated: node => { this.announcer.announce(node) },
      onNodeRemoved: (node, reason) => { this.removed(node, reason) }
    })
    this.db = new NodeDB({ datastore: this.init.datastore ?? components.datastore, logger: components.logger }, {
      clock: this.now,
      random: this.random,
      self: components.peerId,
      nodeExpiration: this.init.nodeExpiration,
      seedMinTableTime: this.init.seedMinTableTime
    })
    this.client = new ProtocolClient(components, {
      ...this.init,
      recordSeqOf: peer => this.table.getNode(peer)?.recordSeq,
      keepConnection: connection => this.dialer?.adopt(connection) ?? false
    })
    this.server = new ProtocolServer(components, {
      ...this.init,
      closest: (target, n) => this.table.closest(target, n, { preferLive: true }),
      onContact: contact => { this.contact(contact) }
    })
    this.lookups = new Lookups({
      ...this.init,
      table: this.table,
      client: this.client,
      db: this.db,
      metrics: this.metrics,
      log: this.log,
      now: this.now,
      overloaded: () => this.load.overloaded(),
      running: () => this.running,
      // the request may have gone over a connection that was already open, so an answer
      // proves the node alive but not the addresses the lookup heard of: an entry is bumped
      // with its own addresses, and a node not in the table stays what the lookup made it
      // (a found node), never an inbound one at hearsay addresses
      onAnswer: (node, via) => {
        const entry = this.table.getNode(node.id)
        if (entry != null) {
          this.contact({ id: entry.id, multiaddrs: entry.addrs })
          if (via != null) {
            this.answeredAtAddrs(entry, via)
          }
        }
      }
    })
    if (this.init.autoDial.enabled) {
      const bootnodes = new Set(this.init.bootnodes.map(b => b.id.toString()))
      this.dialer = new AutoDialer(components, {
        ...this.init.autoDial,
        self: components.peerId,
        candidates: options => this.randomNodes(options),
        sleep: async (ms, options) => { await this.scheduler.sleep(ms, options) },
        now: this.now,
        dialTimeout: this.init.requestTimeout,
        allowLan: this.init.allowLan,
        maxIdleDelay: this.init.refreshInterval,
        claimRequestConnection: connection => this.client.claimConnection(connection),
        isBootnode: peer => bootnodes.has(peer.toString()),
        whenCalm: async options => { await this.whenCalm(options) },
        load: () => this.load.current()
      })
    }
    this.metrics.register({ table: this.table, dbSize: async () => this.db.size(), now: this.now })
  }

  /** Whether the service runs. */
  isStarted (): boolean {
    return this.running
  }

  /** Opens the node database and registers the protocol handler. */
  async start (): Promise<void> {
    if (this.running) {
      return
    }
    this.controller = new AbortController()
    // every request, lookup and wait listens to it
    setMaxListeners(Infinity, this.controller.signal)
    await this.db.open({ signal: this.controller.signal })
    this.client.start()
    await this.server.start()
    this.running = true
    this.log('started')
  }

  /**
   * Port of geth `Table.loop`'s start: loads the seeds (node database + bootnodes) as found
   * nodes, starts the first refresh (after whose self lookup inbound adds are accepted:
   * `initDone`),
   * arms the timers, and starts the auto-dialer.
   */
  async afterStart (): Promise<void> {
    if (!this.running) {
      return
    }
    await this.loadSeedNodes()
    const now = this.now()
    const { refreshInterval, revalidateInterval, copyNodesInterval, expireInterval } = this.init
    // the first refresh runs at once; inbound adds wait for it (geth `initDone`)
    this.scheduler.add('refresh', {
      run: async () => { await this.refresh() },
      next: now => now + refreshInterval
    }, now)
    this.scheduler.add('introduce', {
      run: async () => {
        if (this.table.initDone) {
          await this.lookups.introduceNext({ signal: this.controller.signal })
        }
      },
      next: now => now + NEIGHBOUR_INTRO_INTERVAL
    }, now + NEIGHBOUR_INTRO_INTERVAL)
    this.selfLookupDelay = SELF_LOOKUP_REPEAT
    this.scheduler.add('selfLookup', {
      run: async () => {
        await this.whenCalm()
        await this.repeatSelfLookup()
      },
      next: now => this.selfLookupDelay == null ? Number.POSITIVE_INFINITY : now + this.selfLookupDelay
    }, now + SELF_LOOKUP_REPEAT / 2 + this.random.int(SELF_LOOKUP_REPEAT))
    this.nextProvenCheck = now + nextRevalidateDelay(this.init.provenRevalidateInterval, this.random)
    this.scheduler.add('revalidate', {
      run: async () => {
        await this.whenCalm()
        await this.doRevalidate()
      },
      next: now => now + nextRevalidateDelay(revalidateInterval, this.random)
    }, now + nextRevalidateDelay(revalidateInterval, this.random))
    this.scheduler.add('copy', {
      run: async () => { await this.db.copyLiveNodes(this.table.nodes(), this.now()) },
      next: now => now + copyNodesInterval
    }, now + copyNodesInterval)
    this.scheduler.add('expire', {
      run: async () => { await this.db.expireNodes(this.now()) },
      next: now => now + expireInterval
    }, now + expireInterval)
    this.scheduler.start()
    this.dialer?.start()
  }

  /**
   * Cancels the timers, aborts every request in flight and waits for it, unregisters the
   * protocol, and copies live nodes to the node database one last time.
   */
  async stop (): Promise<void> {
    if (!this.running) {
      return
    }
    this.running = false
    this.controller.abort()
    await this.dialer?.stop()
    await this.scheduler.stop()
    await this.refreshing?.catch(() => {})
    this.refreshing = undefined
    this.earlyContacts.clear()
    await this.lookups.drain()
    await this.server.stop()
    this.client.stop()
    try {
      await this.db.copyLiveNodes(this.table.nodes(), this.now())
    } catch (err) {
      this.log.error('final copy of live nodes failed - %e', err)
    }
    this.log('stopped')
  }

  /** How many nodes the table holds. */
  get size (): number {
    return this.table.size
  }

  /** Every table node. */
  nodes (): PeerInfo[] {
    return this.table.nodes().map(toPeerInfo)
  }

  /** Every bucket with its entries and replacements. */
  buckets (): BucketSnapshot[] {
    return this.table.buckets()
  }

  /** Up to `count` distinct random table nodes (geth v1.9 `ReadRandomNodes`, uniform). */
  readRandomNodes (count: number): PeerInfo[] {
    if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) {
      throw new InvalidParametersError('count must be a non-negative integer')
    }
    return this.table.readRandomNodes(count).map(toPeerInfo)
  }

  /** An endless stream of fresh random nodes: table reads, then random lookups ≥ 1 s apart. */
  async * randomNodes (options: AbortOptions = {}): AsyncGenerator<PeerInfo> {
    this.assertStarted()
    const signal = this.signalFor(options)
    try {
      yield * randomNodes({
        readRandomNodes: n => this.table.readRandomNodes(n).map(toPeerInfo),
        randomLookup: async opts => {
          // geth's refreshIfEmpty: a table that emptied (every node died or turned us away)
          // reloads its seeds and bootnodes instead of staying alone until the next refresh
          await this.refreshIfEmpty(opts)
          return (await this.lookups.run(this.random.bytes(KEY_LENGTH), { ...opts, background: true })).closest.map(toPeerInfoFromLookup)
        },
        sleep: async (ms, opts) => { await this.scheduler.sleep(ms, opts) },
        minLookupInterval: MIN_RANDOM_LOOKUP_INTERVAL,
        batchSize: this.init.bucketSize,
        now: this.now
      }, { signal })
    } catch (err) {
      // an abort (the caller's, or stop()) ends the stream; anything else is a fault
      if (!signal.aborted) {
        throw err
      }
    } finally {
      signal.clear()
    }
  }

  /**
   * The iterative lookup (geth `Table.lookup`): up to `bucketSize` nodes closest to
   * `target`, closest first. A `Uint8Array` target is a 32-byte key; a PeerId is hashed to
   * its key. With an empty table it first waits for the seeds and self lookup of a refresh
   * (geth's `refreshIfEmpty`).
   */
  async lookup (target: PeerId | Uint8Array, options: AbortOptions = {}): Promise<PeerInfo[]> {
    this.assertStarted()
    const key = target instanceof Uint8Array ? target : keyOf(target)
    if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) {
      throw new InvalidParametersError(`a lookup target is a PeerId or a ${KEY_LENGTH}-byte key`)
    }
    await this.refreshIfEmpty(options)
    const signal = this.signalFor(options)
    try {
      const result = await this.lookups.run(key, { signal })
      return result.closest.map(toPeerInfoFromLookup)
    } finally {
      signal.clear()
    }
  }

  /**
   * geth `refreshIfEmpty`: a lookup from an empty table waits for the seeds and the self
   * lookup of a refresh (starting one if none runs), not for the refresh's later lookups,
   * which wait for calm (PROTOCOL.md §8.6): under overload those took minutes, and every
   * user lookup from an emptied table ran out of time before its first request. A table
   * still empty after that (emptied after the running refresh's self lookup) takes its
   * seeds again.
   */
  private async refreshIfEmpty (options: AbortOptions): Promise<void> {
    if (this.table.size > 0) {
      return
    }
    if (this.refreshing == null) {
      this.refresh().catch(err => { this.lookupFailed(err) })
    }
    await raceSignal(this.refreshSeeded ?? Promise.resolve(), options.signal)
    if (this.table.size === 0) {
      await this.loadSeedNodes()
    }
  }

  /**
   * Runs a refresh now and waits for it (geth `Table.refresh`); a caller during a running
   * refresh waits for that one, so two never run at once.
   */
  async refresh (options: AbortOptions = {}): Promise<void> {
    this.assertStarted()
    if (this.refreshing == null) {
      let seeded = (): void => {}
      this.refreshSeeded = new Promise<void>(resolve => { seeded = resolve })
      this.refreshing = this.doRefresh(seeded).finally(() => {
        seeded()
        this.refreshing = undefined
        this.scheduler.setDeadline('refresh', this.now() + this.init.refreshInterval)
      })
    }
    await raceSignal(this.refreshing, options.signal)
  }

  /**
   * Port of geth `Table.doRefresh`: seeds, a self lookup, three random lookups; beyond
   * geth, a lookup of a random key in each bucket (farthest first, down to the first
   * empty one) that no lookup passed through since the last refresh (none aimed into it
   * and none asked a node of it). geth could not aim at a bucket: its FIND_NODE target
   * was a public key; ours is a key.
   */
  private async doRefresh (seeded: () => void = () => {}): Promise<void> {
    const signal = this.controller.signal
    const started = this.now()
    await this.loadSeedNodes()
    await this.selfLookup()
    // geth's initDone waits for the whole first refresh; after the self lookup our
    // neighbourhood is known, and with stale seeds the rest can take minutes, during which
    // every node that contacts us would be turned away
    this.table.setInitDone()
    this.addEarlyContacts()
    seeded()
    // a process overloaded for all of MAX_CALM_WAIT drops the rest of this refresh (the next
    // is refreshInterval away): run anyway, its lookups only add to the overload
    let calm = true
    for (let i = 0; i < 3 && !signal.aborted && calm; i++) {
      calm = await this.lookupWhenCalm(this.random.bytes(KEY_LENGTH), signal)
    }
    for (let b = this.table.nBuckets - 1; b >= 0 && this.init.bucketRefresh && !signal.aborted && calm; b--) {
      const empty = (this.table.bucketFill()[b] ?? 0) === 0
      if (!this.lookups.passedThrough(b)) {
        const [, distance] = this.table.bucketDistances(b)
        calm = await this.lookupWhenCalm(keyAtDistance(this.table.selfKey, distance, this.random.bytes(KEY_LENGTH)), signal)
      }
      if (empty) {
        break
      }
    }
    if (!calm) {
      this.refreshesCut++
      this.log('overloaded for %d ms: the rest of this refresh is dropped (%d so far)', MAX_CALM_WAIT, this.refreshesCut)
    }
    // lookups from now on count towards the next refresh
    this.lookups.resetPassed()
    this.log('refresh done in %d ms, %d nodes', this.now() - started, this.table.size)
  }

  /**
   * The self lookup again, about `SELF_LOOKUP_REPEAT` after start (jittered ±50 %), then
   * after twice as long each time while the delay stays under half the refresh interval
   * (whose refreshes look ourselves up anyway). One runs only when the table holds at
   * least `bucketSize` nodes (in a smaller network every lookup asks every node it knows,
   * so the dialer's and the refresh's do this one's work) and heard of a closer neighbour
   * since the last self lookup (from other lookups, contacts or seeds); the repeats end
   * once one finds nobody new. Each waits for calm first, as other background work does.
   * Beyond geth, which looks itself up once per refresh: a node that joined with others
   * did its self lookup while its neighbours were still arriving, and until it asks them
   * they learn of it only by chance. A settled network skips every repeat.
   */
  private async repeatSelfLookup (): Promise<void> {
    const delay = this.selfLookupDelay ?? SELF_LOOKUP_REPEAT
    const next = delay * 2 < this.init.refreshInterval / 2 ? delay * 2 : undefined
    const before = this.neighbours()
    if (before === this.neighboursAtSelfLookup || this.table.size < this.init.bucketSize) {
      this.selfLookupDelay = next
      return
    }
    await this.selfLookup()
    this.selfLookupDelay = this.neighboursAtSelfLookup !== before ? next : undefined
  }

  /** A lookup of our own key; remembers the neighbours it leaves the table with. */
  private async selfLookup (): Promise<void> {
    await this.doLookup(this.table.selfKey, { signal: this.controller.signal }).catch(err => { this.lookupFailed(err) })
    this.neighboursAtSelfLookup = this.neighbours()
  }

  /** The ids of the table's `bucketSize` nodes closest to us, as one string. */
  private neighbours (): string {
    return this.table.closest(this.table.selfKey, this.init.bucketSize).map(n => n.id.toString()).join()
  }

  /**
   * Waits while our own event loop is overloaded, at most `MAX_CALM_WAIT`: background work
   * (refresh lookups after the self lookup, revalidation, the dialer's next candidate)
   * asks first, so a saturated process sheds what can wait before the requests users
   * and peers are waiting for. It looks again after 1 s, then 2, 4 and 8 s, each jittered:
   * nodes sharing one process do not all go ahead the moment the load dips, which would
   * saturate it again. Never throws: a stop ends the wait and the caller's own signal
   * check follows. False when the loop was still overloaded after `MAX_CALM_WAIT`: a
   * refresh then drops its remaining lookups; revalidation and the dialer go ahead.
   */
  private async whenCalm (options: AbortOptions = {}): Promise<boolean> {
    const started = this.now()
    const signal = options.signal ?? this.controller.signal
    let recheck = CALM_RECHECK
    while (this.running && !signal.aborted && this.load.overloaded()) {
      if (this.now() - started >= MAX_CALM_WAIT) {
        return false
      }
      this.deferred++
      await this.scheduler.sleep(recheck / 2 + this.random.int(recheck), { signal }).catch(() => {})
      recheck = Math.min(recheck * 2, MAX_CALM_RECHECK)
    }
    return true
  }

  private lookupFailed (err: unknown): void {
    if (this.running) {
      this.log.error('refresh lookup failed - %e', err)
    }
  }

  /** Port of geth `Table.loadSeedNodes`: node database seeds and bootnodes, as found nodes. */
  private async loadSeedNodes (): Promise<void> {
    let seeds: PeerInfo[] = []
    try {
      seeds = await this.db.querySeeds(this.init.seedCount, this.init.seedMaxAge, { signal: this.controller.signal })
    } catch (err) {
      this.log.error('could not read seeds - %e', err)
    }
    for (const seed of [...seeds, ...this.init.bootnodes]) {
      const result = this.table.addFoundNode(seed)
      this.metrics.added(result)
      this.log.trace('seed %p: %s', seed.id, result)
    }
  }

  /** A refresh's lookup, on the service's own signal. */
  private async doLookup (target: Uint8Array, options: AbortOptions): Promise<LookupResult> {
    return this.lookups.run(target, { ...options, background: true })
  }

  /**
   * A refresh's lookup once the loop is calm; false (and no lookup) when it never was. A
   * table of fewer than `bucketSize` nodes does not wait: its node is still joining (its
   * self lookup found only its own neighbourhood, and the far buckets fill from these
   * lookups), and in a process saturated for good it would drop them refresh after refresh.
   */
  private async lookupWhenCalm (target: Uint8Array, signal: AbortSignal): Promise<boolean> {
    if (this.table.size >= this.init.bucketSize && !await this.whenCalm()) {
      return false
    }
    await this.doLookup(target, { signal }).catch(err => { this.lookupFailed(err) })
    return true
  }

  /**
   * A node proved itself (it answered, or sent a valid request): geth `addVerifiedNode`.
   * Before `initDone` the table turns it away, as geth does, but beyond geth it is kept
   * (at most `MAX_EARLY_CONTACTS`) and offered again once `initDone` is set: nodes that
   * start together each ask peers still in their own self lookup, and a newcomer whose
   * every first contact was turned away stayed in no table at all until its next refresh.
   */
  private contact (contact: PeerInfo): void {
    if (!this.running) {
      return
    }
    const result = this.table.addInboundNode(contact)
    this.metrics.added(result)
    if (result === AddResult.NotReady) {
      const key = contact.id.toString()
      this.earlyContacts.delete(key)
      if (this.earlyContacts.size >= MAX_EARLY_CONTACTS) {
        const oldest = this.earlyContacts.keys().next()
        if (oldest.done !== true) {
          this.earlyContacts.delete(oldest.value)
        }
      }
      this.earlyContacts.set(key, contact)
    }
  }

  /** Offers the contacts turned away before `initDone` to the table again, newest last. */
  private addEarlyContacts (): void {
    const early = [...this.earlyContacts.values()]
    this.earlyContacts.clear()
    for (const contact of early) {
      this.contact(contact)
    }
  }

  /**
   * The second half of geth `Table.doRevalidate`: ping the last node of a random bucket,
   * then let the table move it to the front or replace it.
   */
  private async doRevalidate (): Promise<void> {
    // two speeds, after geth v1.14's fast and slow lists: a bucket whose last entry never
    // passed a check (a node heard of waits there) is served every tick, an entry that
    // did is checked again only once per `provenRevalidateInterval`: that check costs a
    // dial when no connection to it is open, and a settled table holds no other kind
    const now = this.now()
    const due = now >= this.nextProvenCheck ? this.table.nodeToRevalidate() : this.table.unprovenToRevalidate()
    if (due == null) {
      return
    }
    if (due.node.livenessChecks > 0) {
      this.nextProvenCheck = now + nextRevalidateDelay(this.init.provenRevalidateInterval, this.random)
    }
    let alive = true
    try {
      // geth pings the endpoint it holds: an entry may have come from hearsay (a NODES
      // answer), and a PONG over a connection that was already open would vouch for
      // addresses nobody tried. Once it passed a check there, any connection proves it
      // alive (its addresses change only by its own contact), and a ping costs no dial
      const atAddrs = due.node.livenessChecks === 0
      await this.client.ping({ id: due.node.id, multiaddrs: due.node.addrs }, { signal: this.controller.signal, atAddrs })
    } catch (err) {
      if (!isPeerFault(err)) {
        // cancelled, or timed out while our own loop was overloaded: nothing is known of
        // the peer, and under overload every entry would go this way until the table is empty
        this.log('revalidation of %p says nothing: %e', due.node.id, err)
        return
      }
      alive = false
    }
    if (!this.running) {
      return
    }
    const outcome = this.table.revalidated(due.node, alive)
    this.metrics.revalidated(outcome)
    if (outcome === RevalidationOutcome.Alive) {
      await this.db.updateLastPongReceived(due.node.id, this.now()).catch(err => {
        this.log.error('could not record a pong - %e', err)
      })
    }
    this.log.trace('revalidated %p: %s', due.node.id, outcome)
  }

  /**
   * An answer over a connection that reaches the entry at its own addresses checked them
   * as revalidation's first ping would (`atAddrs`): the entry leaves revalidation's fast
   * lane, so that ping and the dial it would cost wait for the slow one. It does not count
   * as a liveness check: answers prefer nodes that passed one (geth `findnodeByID`), and
   * with most of a young table counted live they skipped its closer unchecked nodes
   * (accuracy 0.976 against 0.996 in a 200-node probe).
   */
  private answeredAtAddrs (entry: TableNode, via: Connection): void {
    if (entry.livenessChecks > 0 || !reachesAddrs(via, entry.id, entry.addrs) || !this.running) {
      return
    }
    if (this.table.addrsChecked(entry)) {
      this.metrics.checkedByAnswer()
    }
  }

  private removed (node: TableNode, reason: RemoveReason): void {
    this.metrics.removed(reason)
    this.log.trace('removed %p: %s', node.id, reason)
  }

  /**
   * Aborts on stop() or on the caller's signal; many requests listen to it at once.
   * `clear()` it when done: it detaches from the service's long-lived signal, where
   * `AbortSignal.any` would leave one dependant per call behind.
   */
  private signalFor (options: AbortOptions): ClearableSignal {
    const signal = anySignal([this.controller.signal, options.signal])
    setMaxListeners(Infinity, signal)
    return signal
  }

  private assertStarted (): void {
    if (!this.running) {
      throw new NotStartedError('kad-discovery is not started')
    }
  }
}

function toPeerInfo (node: TableNode): PeerInfo {
  return { id: node.id, multiaddrs: [...node.addrs] }
}

function toPeerInfoFromLookup (node: LookupNode): PeerInfo {
  return { id: node.id, multiaddrs: [...node.multiaddrs] }
}
