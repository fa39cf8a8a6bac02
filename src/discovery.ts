import {
  NotStartedError, InvalidParametersError, peerDiscoverySymbol, serviceCapabilities, serviceDependencies, setMaxListeners,
  TypedEventEmitter
} from '@libp2p/interface'
import { MIN_RANDOM_LOOKUP_INTERVAL, KEY_LENGTH, MAX_ANNOUNCED_PEERS } from './constants.js'
import { AutoDialer } from './dialer.js'
import { resolveInit } from './init.js'
import { lookup, randomNodes } from './lookup.js'
import { DiscoveryMetrics } from './metrics.js'
import { ProtocolClient } from './protocol/client.js'
import { ProtocolServer } from './protocol/server.js'
import { NodeDB } from './store/node-db.js'
import { keyAtDistance, keyOf } from './table/key.js'
import { cryptoRandom } from './table/random.js'
import { nextRevalidateDelay, RevalidationOutcome } from './table/revalidation.js'
import { Table } from './table/table.js'
import type { KadDiscoveryInit, ResolvedInit } from './init.js'
import type { LookupNode, LookupResult } from './lookup.js'
import type { BucketSnapshot, RandomSource, RemoveReason, TableNode } from './table/types.js'
import type {
  AbortOptions, ComponentLogger, Libp2pEvents, Logger, Metrics, PeerDiscovery, PeerDiscoveryEvents,
  PeerId, PeerInfo, PeerStore, Startable, TypedEventTarget
} from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { Datastore } from 'interface-datastore'

/** What the service uses of libp2p; tests can pass a small object. */
export interface KadDiscoveryComponents {
  /** The local node's id. */
  peerId: PeerId
  /** Registers the protocol handler. */
  registrar: Registrar
  /** Opens request streams and auto-dials. */
  connectionManager: ConnectionManager
  /** Where found peers are merged before they are announced; requesters' listen addresses. */
  peerStore: PeerStore
  /** The node database's home unless `init.datastore` is given. */
  datastore: Datastore
  /** Component loggers, under `libp2p:kad-discovery`. */
  logger: ComponentLogger
  /** libp2p's events: the auto-dialer wakes when a connection closes. */
  events: TypedEventTarget<Libp2pEvents>
  /** Metrics, when the node has them. */
  metrics?: Metrics
}

type Task = 'refresh' | 'revalidate' | 'copy' | 'expire'

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

  private readonly components: KadDiscoveryComponents
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

  private running = false
  private controller = new AbortController()
  private timer?: ReturnType<typeof setTimeout>
  // BOUNDED: one deadline per task
  private readonly deadlines = new Map<Task, number>()
  // BOUNDED: one promise per task kind
  private readonly inFlight = new Map<Task, Promise<void>>()
  private refreshing?: Promise<void>
  // BOUNDED: ≤ nBuckets indexes; buckets a lookup passed through (aimed into, or asked a
  // node of) since the last refresh ended
  private readonly lookedUp = new Set<number>()
  // BOUNDED: ≤ MAX_ANNOUNCED_PEERS peers, oldest forgotten first
  private readonly announced = new Map<string, string>()

  constructor (components: KadDiscoveryComponents, init: KadDiscoveryInit = {}) {
    super()
    this.components = components
    this.init = resolveInit(init)
    this.log = components.logger.forComponent('libp2p:kad-discovery')
    this.metrics = new DiscoveryMetrics(components.metrics)
    this.table = new Table({
      ...this.init,
      self: components.peerId,
      clock: this.now,
      random: this.random,
      onNodeAdded: node => { this.announce(node) },
      onNodeUpdated: node => { this.announce(node) },
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
      keepConnection: connection => this.dialer?.adopt(connection) ?? false
    })
    this.server = new ProtocolServer(components, {
      ...this.init,
      closest: (target, n) => this.table.closest(target, n, { preferLive: true }),
      onContact: contact => { this.contact(contact) }
    })
    if (this.init.autoDial.enabled) {
      this.dialer = new AutoDialer(components, {
        ...this.init.autoDial,
        self: components.peerId,
        candidates: options => this.randomNodes(options),
        sleep: async (ms, options) => { await this.sleep(ms, options) },
        now: this.now,
        dialTimeout: this.init.requestTimeout
      })
    }
    this.metrics.register({
      table: this.table,
      dbSize: async () => this.db.size(),
      client: this.client,
      server: this.server
    })
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
   * nodes, starts the first refresh (after which inbound adds are accepted: `initDone`),
   * arms the timers, and starts the auto-dialer.
   */
  async afterStart (): Promise<void> {
    if (!this.running) {
      return
    }
    const now = this.now()
    this.deadlines.set('revalidate', now + nextRevalidateDelay(this.init.revalidateInterval, this.random))
    this.deadlines.set('copy', now + this.init.copyNodesInterval)
    this.deadlines.set('expire', now + this.init.expireInterval)
    this.deadlines.set('refresh', now + this.init.refreshInterval)
    await this.loadSeedNodes()
    this.background('refresh', async () => {
      await this.refresh()
      this.table.setInitDone()
    })
    this.dialer?.start()
    this.schedule()
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
    clearTimeout(this.timer)
    this.timer = undefined
    this.controller.abort()
    await this.dialer?.stop()
    await Promise.allSettled([...this.inFlight.values(), this.refreshing])
    this.inFlight.clear()
    this.refreshing = undefined
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
    yield * randomNodes({
      readRandomNodes: n => this.table.readRandomNodes(n).map(toPeerInfo),
      randomLookup: async opts => (await this.doLookup(this.random.bytes(KEY_LENGTH), opts)).closest.map(toPeerInfoFromLookup),
      sleep: async (ms, opts) => { await this.sleep(ms, opts) },
      minLookupInterval: MIN_RANDOM_LOOKUP_INTERVAL,
      batchSize: this.init.bucketSize,
      now: this.now
    }, { signal })
  }

  /**
   * The iterative lookup (geth `Table.lookup`): up to `bucketSize` nodes closest to
   * `target`, closest first. A `Uint8Array` target is a 32-byte key; a PeerId is hashed to
   * its key. With an empty table it waits for one refresh first (geth's `refreshIfEmpty`).
   */
  async lookup (target: PeerId | Uint8Array, options: AbortOptions = {}): Promise<PeerInfo[]> {
    this.assertStarted()
    const key = target instanceof Uint8Array ? target : keyOf(target)
    if (!(key instanceof Uint8Array) || key.length !== KEY_LENGTH) {
      throw new InvalidParametersError(`a lookup target is a PeerId or a ${KEY_LENGTH}-byte key`)
    }
    if (this.table.size === 0) {
      await this.refresh(options)
    }
    const result = await this.doLookup(key, options)
    return result.closest.map(toPeerInfoFromLookup)
  }

  /**
   * Runs a refresh now and waits for it (geth `Table.refresh`); a caller during a running
   * refresh waits for that one, so two never run at once.
   */
  async refresh (options: AbortOptions = {}): Promise<void> {
    this.assertStarted()
    if (this.refreshing == null) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = undefined
        if (this.running) {
          this.deadlines.set('refresh', this.now() + this.init.refreshInterval)
          this.schedule()
        }
      })
    }
    const running = this.refreshing
    if (options.signal == null) {
      await running
      return
    }
    const signal = options.signal
    signal.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
      running.then(resolve, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
    })
  }

  /**
   * Port of geth `Table.doRefresh`: seeds, a self lookup, three random lookups; beyond
   * geth, a lookup of a random key in each bucket (farthest first, down to the first
   * empty one) that no lookup passed through since the last refresh (none aimed into it
   * and none asked a node of it). geth could not aim at a bucket: its FIND_NODE target
   * was a public key; ours is a key.
   */
  private async doRefresh (): Promise<void> {
    const signal = this.controller.signal
    const started = this.now()
    await this.loadSeedNodes()
    await this.doLookup(this.table.selfKey, { signal }).catch(err => { this.lookupFailed(err) })
    for (let i = 0; i < 3 && !signal.aborted; i++) {
      await this.doLookup(this.random.bytes(KEY_LENGTH), { signal }).catch(err => { this.lookupFailed(err) })
    }
    for (let b = this.table.nBuckets - 1; b >= 0 && !signal.aborted; b--) {
      const empty = (this.table.bucketFill()[b] ?? 0) === 0
      if (!this.lookedUp.has(b)) {
        const [, distance] = this.table.bucketDistances(b)
        const target = keyAtDistance(this.table.selfKey, distance, this.random.bytes(KEY_LENGTH))
        await this.doLookup(target, { signal }).catch(err => { this.lookupFailed(err) })
      }
      if (empty) {
        break
      }
    }
    // lookups from now on count towards the next refresh
    this.lookedUp.clear()
    this.log('refresh done in %d ms, %d nodes', this.now() - started, this.table.size)
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

  private async doLookup (target: Uint8Array, options: AbortOptions): Promise<LookupResult> {
    this.lookedUp.add(this.table.bucketIndexOf(target))
    const stop = this.metrics.lookupTimer()
    const signal = this.signalFor(options)
    try {
      const result = await lookup({
        table: this.table,
        alpha: this.init.alpha,
        bucketSize: this.init.bucketSize,
        query: async (node, key, opts) => this.findnode(node, key, opts)
      }, target, { signal })
      // a lookup passes through the buckets of the nodes it asked: no need to aim at them
      for (const key of result.asked) {
        this.lookedUp.add(this.table.bucketIndexOf(key))
      }
      return result
    } finally {
      stop()
    }
  }

  /**
   * Port of geth `Table.findnode`: a FIND_NODE request with failure counting. A failed or
   * empty answer adds one to the node's consecutive failures in the node database; at
   * `maxFindnodeFailures` it is dropped (if its bucket keeps enough entries). A good answer
   * resets the count (geth decremented it) and proves the node alive.
   */
  private async findnode (node: LookupNode, target: Uint8Array, options: AbortOptions): Promise<PeerInfo[]> {
    let found: PeerInfo[] = []
    let error: unknown
    try {
      found = await this.client.findNode({ id: node.id, multiaddrs: node.multiaddrs }, target, options)
    } catch (err) {
      error = err
    }
    if (!this.running) {
      throw error ?? new NotStartedError('stopped')
    }
    const ok = error == null && found.length > 0
    try {
      const fails = await this.db.recordFindnode(node.id, ok)
      if (fails >= this.init.maxFindnodeFailures && this.table.dropFailedNode(node.id)) {
        this.log('dropped %p after %d failed requests', node.id, fails)
      }
      if (ok) {
        await this.db.updateLastPongReceived(node.id, this.now())
      }
    } catch (err) {
      this.log.error('node database update failed - %e', err)
    }
    if (error != null) {
      throw error
    }
    this.contact({ id: node.id, multiaddrs: node.multiaddrs })
    return found
  }

  /** A node proved itself (it answered, or sent a valid request): geth `addVerifiedNode`. */
  private contact (contact: PeerInfo): void {
    if (!this.running) {
      return
    }
    this.metrics.added(this.table.addInboundNode(contact))
  }

  /**
   * The second half of geth `Table.doRevalidate`: ping the last node of a random bucket,
   * then let the table move it to the front or replace it.
   */
  private async doRevalidate (): Promise<void> {
    const due = this.table.nodeToRevalidate()
    if (due == null) {
      return
    }
    let alive = true
    try {
      await this.client.ping({ id: due.node.id, multiaddrs: due.node.addrs }, { signal: this.controller.signal })
    } catch {
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

  /** Runs whatever is due, then arms the one timer for the earliest deadline. */
  private schedule (): void {
    if (!this.running) {
      return
    }
    clearTimeout(this.timer)
    const now = this.now()
    for (const [task, at] of this.deadlines) {
      if (at <= now && !this.inFlight.has(task)) {
        this.deadlines.delete(task)
        this.runTask(task)
      }
    }
    const next = Math.min(...this.deadlines.values())
    if (Number.isFinite(next)) {
      this.timer = setTimeout(() => { this.schedule() }, Math.max(0, next - now))
      this.timer.unref?.()
    }
  }

  private runTask (task: Task): void {
    switch (task) {
      case 'refresh':
        this.background(task, async () => { await this.refresh() })
        break
      case 'revalidate':
        this.background(task, async () => { await this.doRevalidate() }, () => {
          this.deadlines.set('revalidate', this.now() + nextRevalidateDelay(this.init.revalidateInterval, this.random))
        })
        break
      case 'copy':
        this.background(task, async () => { await this.db.copyLiveNodes(this.table.nodes(), this.now()) }, () => {
          this.deadlines.set('copy', this.now() + this.init.copyNodesInterval)
        })
        break
      case 'expire':
        this.background(task, async () => { await this.db.expireNodes(this.now()) }, () => {
          this.deadlines.set('expire', this.now() + this.init.expireInterval)
        })
        break
    }
  }

  /** Fire-and-forget, written out: tracked so `stop()` can wait, errors logged. */
  private background (task: Task, fn: () => Promise<void>, rearm?: () => void): void {
    const run = fn()
      .catch(err => {
        if (this.running) {
          this.log.error('%s failed - %e', task, err)
        }
      })
      .finally(() => {
        this.inFlight.delete(task)
        if (this.running) {
          rearm?.()
          this.schedule()
        }
      })
    this.inFlight.set(task, run)
  }

  /** Waits `ms`, cancelled by stop() or the signal. */
  private async sleep (ms: number, options: AbortOptions = {}): Promise<void> {
    const signal = this.signalFor(options)
    signal.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer)
        reject(signal.reason)
      }
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort)
        resolve()
      }, ms)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  /**
   * Emits `peer` for a node that entered the table, once, and again only when its
   * addresses change; after `peerStore.merge`, and never after stop.
   */
  private announce (node: TableNode): void {
    const id = node.id.toString()
    const addrs = node.addrs.map(a => a.toString()).sort().join(' ')
    if (this.announced.get(id) === addrs) {
      return
    }
    this.announced.delete(id)
    this.announced.set(id, addrs)
    if (this.announced.size > MAX_ANNOUNCED_PEERS) {
      this.announced.delete(this.announced.keys().next().value as string)
    }
    const info = toPeerInfo(node)
    this.components.peerStore.merge(info.id, { multiaddrs: info.multiaddrs })
      .then(() => {
        if (this.running) {
          this.safeDispatchEvent('peer', { detail: info })
        }
      })
      .catch(err => { this.log.error('could not merge %p into the peer store - %e', info.id, err) })
  }

  private removed (node: TableNode, reason: RemoveReason): void {
    this.metrics.removed(reason)
    this.log.trace('removed %p: %s', node.id, reason)
  }

  /** Aborts on stop() or on the caller's signal; many requests listen to it at once. */
  private signalFor (options: AbortOptions): AbortSignal {
    const signal = options.signal == null ? this.controller.signal : AbortSignal.any([this.controller.signal, options.signal])
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
