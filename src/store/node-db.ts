import { InvalidParametersError } from '@libp2p/interface'
import { NODE_EXPIRATION, SEED_MIN_TABLE_TIME } from '../constants.js'
import { RecordAccess } from './record-access.js'
import { emptyStats, MAX_PENDING_NODES, NODES_PREFIX, PendingTimes, PREFIX, Reservoir, SCHEMA_VERSION, VERSION_KEY, decodeFields, encodeFields, keyName, nodeKey, toPeerInfo } from './records.js'
import type { Corrupt } from './record-access.js'
import type { NodeDBStats, NodeFields, NodeTimes } from './records.js'
import type { Clock, RandomSource, TableNode } from '../table/types.js'
import type { AbortOptions, ComponentLogger, Logger, PeerId, PeerInfo } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Datastore, Key } from 'interface-datastore'

export { CorruptReason, MAX_PENDING_NODES } from './records.js'
export type { NodeDBStats } from './records.js'

/** What the node database needs from libp2p: only these, so tests pass a small object. */
export interface NodeDBComponents {
  /** Where records live: the libp2p node's datastore, or one given in the service's init. */
  datastore: Datastore
  /** For `libp2p:kad-discovery:node-db`. */
  logger: ComponentLogger
}

/** How a `NodeDB` is built. */
export interface NodeDBInit {
  /** Milliseconds, injected, so expiry and seed age are tested without waiting. */
  clock: Clock
  /** Randomness for seed sampling, injected. */
  random: RandomSource
  /** The local node: never returned as a seed, never written. */
  self?: PeerId
  /** A node with no pong for this long is deleted by `expireNodes`. @default NODE_EXPIRATION (24 h) */
  nodeExpiration?: number
  /** A table node is copied once it has been in the table this long. @default SEED_MIN_TABLE_TIME (5 min) */
  seedMinTableTime?: number
  /** Nodes without a record whose times are kept in memory; the oldest is forgotten first. @default 4096 */
  maxPendingNodes?: number
}

const ZERO_TIMES: Readonly<NodeTimes> = { lastPingSent: 0, lastPongReceived: 0, findFails: 0 }

/**
 * The node database: geth's `nodeDB` (`p2p/discover/database.go`, v1.8) on
 * `interface-datastore`, so it runs on whatever datastore the libp2p node was given, and on
 * disk on `datastore-level`.
 *
 * Departures from geth:
 * - One protobuf record per node (addrs, lastPingSent, lastPongReceived, findFails,
 *   firstSeen) instead of one key per field: a scan is one prefix query, a write one put.
 * - Bounded by construction. Only `copyLiveNodes` and `updateNode` create records, and the
 *   service calls them for table nodes only; `expireNodes` deletes a record 24 h after its
 *   last pong. So the store holds the nodes that were live in the table during the last
 *   `nodeExpiration`. Times reported for a node without a record (geth would create one for
 *   every node that ever answered, which lets any peer grow our disk) stay in a bounded
 *   in-memory map and are folded into the record when it is first written.
 * - Corrupt records never stop the module: they are logged, counted in `stats` and deleted.
 * - Every operation runs alone (one queue, `RecordAccess`): a read-modify-write never
 *   interleaves with another at an `await`, and a scan sees a stable store.
 */
export class NodeDB {
  /** Counters of what was dropped and why. */
  readonly stats: NodeDBStats = emptyStats()

  private readonly records: RecordAccess
  private readonly log: Logger
  private readonly clock: Clock
  private readonly random: RandomSource
  private readonly self?: string
  private readonly nodeExpiration: number
  private readonly seedMinTableTime: number
  private readonly pending: PendingTimes

  constructor (components: NodeDBComponents, init: NodeDBInit) {
    this.log = components.logger.forComponent('libp2p:kad-discovery:node-db')
    this.records = new RecordAccess(components.datastore, this.stats, this.log)
    this.clock = init.clock
    this.random = init.random
    this.self = init.self?.toString()
    this.nodeExpiration = init.nodeExpiration ?? NODE_EXPIRATION
    this.seedMinTableTime = init.seedMinTableTime ?? SEED_MIN_TABLE_TIME
    checkTime('nodeExpiration', this.nodeExpiration)
    checkTime('seedMinTableTime', this.seedMinTableTime)
    const maxPendingNodes = init.maxPendingNodes ?? MAX_PENDING_NODES
    if (!Number.isSafeInteger(maxPendingNodes) || maxPendingNodes < 0) {
      throw new InvalidParametersError('maxPendingNodes must be a non-negative integer')
    }
    this.pending = new PendingTimes(maxPendingNodes)
  }

  /**
   * Port of geth `newPersistentNodeDB`'s version check: if `/kad-discovery/version` is not
   * ours, every key under `/kad-discovery/` is deleted (never anything outside it) and the
   * version is written. Nothing else is read: corrupt records are dropped where a scan
   * meets them. Call it before anything else.
   */
  async open (options?: AbortOptions): Promise<void> {
    await this.records.exclusive(async () => {
      const found = await this.records.getValue(VERSION_KEY, options)
      const version = found == null ? undefined : new TextDecoder().decode(found)
      if (version === String(SCHEMA_VERSION)) {
        return
      }
      const keys: Key[] = []
      for await (const key of this.records.datastore.queryKeys({ prefix: PREFIX }, options)) {
        // overwritten below; a batch need not keep order (datastore-core's runs puts first)
        if (key.toString() !== VERSION_KEY.toString()) {
          keys.push(key)
        }
      }
      const batch = this.records.datastore.batch()
      for (const key of keys) {
        batch.delete(key)
      }
      batch.put(VERSION_KEY, new TextEncoder().encode(String(SCHEMA_VERSION)))
      await batch.commit(options)
      // a fresh datastore has neither: that is a first start, not a reset
      if (found != null || keys.length > 0) {
        this.stats.schemaResets++
        this.log('schema version %s is not %d: cleared %d keys', version ?? 'missing', SCHEMA_VERSION, keys.length)
      }
    })
  }

  /** Port of geth `nodeDB.lastPongReceived`: when the node last answered a ping, 0 if never. */
  async lastPongReceived (id: PeerId): Promise<number> {
    return (await this.times(id)).lastPongReceived
  }

  /** Port of geth `nodeDB.updateLastPongReceived`; a node without a record is kept in memory. */
  async updateLastPongReceived (id: PeerId, time: number): Promise<void> {
    checkTime('time', time)
    await this.updateTimes(id, times => { times.lastPongReceived = time })
  }

  /**
   * When we last pinged the node, 0 if never. Not in geth v1.8, which keeps pings received
   * (`nodeDB.lastPingReceived`) for its UDP endpoint proof, which libp2p's authenticated
   * connections make moot; ours lets the service space its pings to a node.
   */
  async lastPingSent (id: PeerId): Promise<number> {
    return (await this.times(id)).lastPingSent
  }

  /** Records when we last pinged the node (see `lastPingSent`); a node without a record is kept in memory. */
  async updateLastPingSent (id: PeerId, time: number): Promise<void> {
    checkTime('time', time)
    await this.updateTimes(id, times => { times.lastPingSent = time })
  }

  /** Port of geth `nodeDB.findFails`: consecutive failed FIND_NODE requests, 0 if unknown. */
  async findFails (id: PeerId): Promise<number> {
    return (await this.times(id)).findFails
  }

  /** Port of geth `nodeDB.updateFindFails`; a node without a record is kept in memory. */
  async updateFindFails (id: PeerId, fails: number): Promise<void> {
    if (!Number.isInteger(fails) || fails < 0 || fails > 0xffffffff) {
      throw new InvalidParametersError('fails must be an integer in [0, 2^32)')
    }
    await this.updateTimes(id, times => { times.findFails = fails })
  }

  /**
   * The failure counting of geth's lookup `findnode` in one step, so two lookups asking the
   * same node at once cannot lose a count between a read and a write: a failed request adds
   * one to the node's consecutive failures, a good one resets them to 0 (geth subtracted
   * one). With `pongAt`, the answer also counts as the node's last pong (geth's lookups
   * refresh it too), in the same write. Returns the new count.
   */
  async recordFindnode (id: PeerId, ok: boolean, pongAt?: number): Promise<number> {
    if (pongAt != null) {
      checkTime('pongAt', pongAt)
    }
    let fails = 0
    await this.updateTimes(id, times => {
      times.findFails = ok ? 0 : Math.min(times.findFails + 1, 0xffffffff)
      fails = times.findFails
      if (pongAt != null) {
        times.lastPongReceived = pongAt
      }
    })
    return fails
  }

  /**
   * Port of geth `nodeDB.updateNode`: writes the node's addresses, creating its record (with
   * `firstSeen` now and any times kept in memory) if it has none. The service calls it only
   * for table nodes; that is what keeps the store bounded.
   */
  async updateNode (node: { id: PeerId, multiaddrs: Multiaddr[] }): Promise<void> {
    if (node.multiaddrs.length === 0) {
      throw new InvalidParametersError('a node record needs at least one multiaddr')
    }
    if (node.id.toString() === this.self) {
      throw new InvalidParametersError('the local node is never stored')
    }
    await this.records.exclusive(async () => {
      const name = node.id.toString()
      const fields = await this.records.read(name) ?? this.newFields(name, this.clock())
      fields.addrs = node.multiaddrs.map(ma => ma.bytes)
      await this.records.write(name, fields)
      this.pending.delete(name)
    })
  }

  /**
   * Port of geth `nodeDB.querySeeds`: up to `n` distinct random nodes that answered a ping
   * within `maxAge` ms, never the local node. geth seeks to at most `5n` random keys, which
   * `interface-datastore` cannot do (and which favours nodes after gaps in the key space and
   * can come back short). Here one prefix query streams every record through a cheap decode
   * and the age filter into a uniform reservoir sample (`Reservoir`): only the sample is
   * held, only nodes that would enter it have their peer id and addresses parsed, and the
   * result is short only when fewer than `n` nodes qualify. Distinct: a key holds one node,
   * and only a canonical peer id passes.
   */
  async querySeeds (n: number, maxAge: number, options?: AbortOptions): Promise<PeerInfo[]> {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new InvalidParametersError('n must be a non-negative integer')
    }
    if (Number.isNaN(maxAge) || maxAge < 0) {
      throw new InvalidParametersError('maxAge must be a non-negative number')
    }
    if (n === 0) {
      return []
    }
    return this.records.exclusive(async () => {
      const now = this.clock()
      const seeds = new Reservoir<PeerInfo>(n, this.random)
      const corrupt: Corrupt[] = []
      let young = 0
      for await (const { key, value } of this.records.datastore.query({ prefix: NODES_PREFIX }, options)) {
        const fields = decodeFields(value)
        if (typeof fields === 'string') {
          corrupt.push({ key, reason: fields })
          continue
        }
        if (now - fields.lastPongReceived > maxAge) {
          continue
        }
        young++
        if (!seeds.wants()) {
          seeds.pass()
          continue
        }
        // key strings are read only here: decoding 10 000 of them costs more than the rest
        const name = keyName(key)
        const info = name === this.self ? undefined : toPeerInfo(name, fields)
        if (typeof info === 'string') {
          corrupt.push({ key, reason: info })
        } else if (info != null) {
          seeds.keep(info)
        }
      }
      await this.records.dropCorrupt(corrupt)
      const picked = seeds.sample()
      this.log.trace('%d seeds of %d nodes younger than %d ms', picked.length, young, maxAge)
      return picked
    })
  }

  /**
   * Port of geth `nodeDB.expireNodes`: deletes every record whose last pong is
   * `nodeExpiration` or more before `now`, in one batch, and returns how many. It is also the
   * sweeper: it checks every record fully, so a corrupt one outlives at most one cleanup
   * cycle (those are counted in `stats`, not in the result). A failing delete of an expired
   * record is the call's error; of a corrupt one, only logged.
   */
  async expireNodes (now: number = this.clock()): Promise<number> {
    checkTime('now', now)
    return this.records.exclusive(async () => {
      const threshold = now - this.nodeExpiration
      const expired: Key[] = []
      const corrupt: Corrupt[] = []
      for await (const { key, value } of this.records.datastore.query({ prefix: NODES_PREFIX })) {
        const fields = decodeFields(value)
        const info = typeof fields === 'string' ? fields : toPeerInfo(keyName(key), fields)
        if (typeof info === 'string') {
          corrupt.push({ key, reason: info })
        } else if ((fields as NodeFields).lastPongReceived <= threshold) {
          expired.push(key)
        }
      }
      await this.records.dropCorrupt(corrupt)
      if (expired.length > 0) {
        const batch = this.records.datastore.batch()
        for (const key of expired) {
          batch.delete(key)
        }
        await batch.commit()
        this.stats.expired += expired.length
        this.log('expired %d nodes with no pong since %d', expired.length, threshold)
      }
      return expired.length
    })
  }

  /**
   * Port of geth `Table.copyLiveNodes`: writes, in one batch, every node that has been in the
   * table for `seedMinTableTime` and passed a liveness check (geth v1.9 added that check; the
   * seed copied any node old enough). Each record keeps its `firstSeen` and times, takes the
   * table's addresses, and takes any times kept in memory. Its `lastPongReceived` is at least
   * the latest known; with none known it is `now`: a node with `livenessChecks > 0` answered
   * a revalidation ping while in the table, and the service reports those pongs through
   * `updateLastPongReceived`, so this only fills a gap. Returns the number written.
   */
  async copyLiveNodes (nodes: Iterable<TableNode>, now: number = this.clock()): Promise<number> {
    checkTime('now', now)
    // a table never holds a node twice, but the caller may pass any iterable: the last wins
    const live = new Map<string, TableNode>()
    for (const node of nodes) {
      const name = node.id.toString()
      if (node.livenessChecks > 0 && now - node.addedAt >= this.seedMinTableTime && node.addrs.length > 0 && name !== this.self) {
        live.set(name, node)
      }
    }
    if (live.size === 0) {
      return 0
    }
    return this.records.exclusive(async () => {
      const names = [...live.keys()]
      // the reads are independent; a LevelDB get waits on the thread pool, so overlap them
      const stored = await Promise.all(names.map(async name => this.records.read(name, { keepCorrupt: true })))
      const batch = this.records.datastore.batch()
      for (const [i, name] of names.entries()) {
        // a new record takes the times kept in memory; a stored one already holds them all
        const fields = stored[i] ?? this.newFields(name, now)
        fields.lastPongReceived = fields.lastPongReceived > 0 ? fields.lastPongReceived : now
        fields.addrs = (live.get(name) as TableNode).addrs.map(ma => ma.bytes)
        batch.put(nodeKey(name), encodeFields(fields))
      }
      await batch.commit()
      for (const name of names) {
        this.pending.delete(name)
      }
      this.log.trace('copied %d live nodes', names.length)
      return names.length
    })
  }

  /** Port of geth `nodeDB.deleteNode`: forgets the node's record and any times kept in memory. */
  async deleteNode (id: PeerId): Promise<void> {
    await this.records.exclusive(async () => {
      await this.records.datastore.delete(nodeKey(id))
      this.pending.delete(id.toString())
    })
  }

  /** How many node records are stored (corrupt ones not yet swept included). */
  async size (options?: AbortOptions): Promise<number> {
    return this.records.exclusive(async () => {
      let count = 0
      // eslint-disable-next-line @typescript-eslint/no-unused-vars -- only counted
      for await (const _ of this.records.datastore.queryKeys({ prefix: NODES_PREFIX }, options)) {
        count++
      }
      return count
    })
  }

  /** The number of nodes whose times are kept in memory only (≤ `maxPendingNodes`). */
  get pendingSize (): number {
    return this.pending.size
  }

  private async times (id: PeerId): Promise<NodeTimes> {
    const name = id.toString()
    return this.records.exclusive(async () => this.pending.get(name) ?? await this.records.read(name) ?? ZERO_TIMES)
  }

  // write through to the record if there is one, else to the in-memory map
  private async updateTimes (id: PeerId, change: (times: NodeTimes) => void): Promise<void> {
    const name = id.toString()
    await this.records.exclusive(async () => {
      const fields = await this.records.read(name)
      if (fields != null) {
        change(fields)
        await this.records.write(name, fields)
        return
      }
      this.stats.pendingEvicted += this.pending.update(name, change)
    })
  }

  // a new record, taking the times kept in memory
  private newFields (name: string, now: number): NodeFields {
    return { ...ZERO_TIMES, ...this.pending.get(name), addrs: [], firstSeen: now }
  }
}

function checkTime (name: string, value: number): void {
  if (!Number.isFinite(value) || value < 0) {
    throw new InvalidParametersError(`${name} must be a finite non-negative number of milliseconds`)
  }
}
