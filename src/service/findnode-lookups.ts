import { NotStartedError, TimeoutError } from '@libp2p/interface'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { MAX_INTRODUCED_NEIGHBOURS } from '../constants.js'
import { isPeerFault } from '../protocol/client.js'
import { deadline } from '../protocol/deadline.js'
import { keyText, lookup } from './iterative-lookup.js'
import type { LookupNode, LookupResult } from './iterative-lookup.js'
import type { DiscoveryMetrics } from './metrics.js'
import type { ProtocolClient } from '../protocol/client.js'
import type { NodeDB } from '../store/node-db.js'
import type { Table } from '../table/table.js'
import type { AbortOptions, Connection, Logger, PeerInfo } from '@libp2p/interface'

/** What the service hands the lookup runner. */
export interface LookupsInit {
  table: Table
  client: ProtocolClient
  db: NodeDB
  metrics: DiscoveryMetrics
  log: Logger
  alpha: number
  bucketSize: number
  maxFindnodeFailures: number
  /** A lookup's time budget, ms: past it, it ends with the nodes that answered so far. */
  lookupTimeout: number
  now(): number
  /** Whether our own event loop is overloaded: background lookups then ask one node at a time. */
  overloaded(): boolean
  /** Whether the service still runs: answers after stop() change nothing. */
  running(): boolean
  /**
   * A node answered, over `via` when the client said which connection: the service adds
   * it as an inbound (proven) node.
   */
  onAnswer(node: PeerInfo, via?: Connection): void
}

/**
 * Runs lookups over the wire (the seed's `lookup` with its `findnode`) and remembers
 * which buckets they passed through since the last refresh, so the refresh only aims at
 * the buckets nothing has visited.
 */
export class Lookups {
  private readonly init: LookupsInit
  // BOUNDED: ≤ nBuckets indexes
  private readonly passed = new Set<number>()
  // BOUNDED: one entry per answer whose node database update is still running (≤ the
  // requests of the lookups in flight, each a single queued read-modify-write)
  private readonly bookkeeping = new Set<Promise<void>>()
  // the nodes sent a FIND_NODE for our own key (by a self lookup or an introduction), as
  // base64 keys; BOUNDED: ≤ MAX_INTRODUCED_NEIGHBOURS, the oldest forgotten first
  private readonly introduced = new Set<string>()

  constructor (init: LookupsInit) {
    this.init = init
  }

  /** Whether a lookup passed through bucket `index` (aimed into it, or asked a node of it). */
  passedThrough (index: number): boolean {
    return this.passed.has(index)
  }

  /** Forgets which buckets were passed through: a refresh has just covered them. */
  resetPassed (): void {
    this.passed.clear()
  }

  /**
   * A lookup of `target`, timed, with every node asked marking its bucket. A `background`
   * lookup (refresh, self, the auto-dialer's random ones) has one request in flight, not
   * `alpha`, while our own event loop is overloaded: a saturated process answers late,
   * each request that runs out its deadline hands its place to a node that needs a new
   * connection, and that feeds the overload. A user's lookup keeps `alpha`. Every lookup
   * ends after `lookupTimeout` with the nodes that answered so far, its requests in flight
   * cancelled (never charged to their peers); the caller's abort still rejects it.
   */
  async run (target: Uint8Array, options: AbortOptions & { background?: boolean }): Promise<LookupResult> {
    const { table, metrics } = this.init
    this.passed.add(table.bucketIndexOf(target))
    const stop = metrics.lookupTimer()
    const budget = deadline(this.init.lookupTimeout, () => new TimeoutError('lookup time budget spent'), options.signal)
    try {
      const result = await lookup({
        table,
        alpha: this.init.alpha,
        ...(options.background === true ? { concurrency: () => this.init.overloaded() ? 1 : this.init.alpha } : {}),
        bucketSize: this.init.bucketSize,
        query: async (node, key, opts) => this.findnode(node, key, opts)
      }, target, { signal: options.signal, stop: budget.signal })
      for (const key of result.asked) {
        this.passed.add(table.bucketIndexOf(key))
      }
      if (uint8ArrayEquals(target, table.selfKey)) {
        result.asked.forEach(key => { this.markIntroduced(key) })
      }
      return result
    } finally {
      budget.clear()
      stop()
    }
  }

  /**
   * One neighbour introduction: a FIND_NODE for our own key to the closest node of our
   * `bucketSize` nearest that was never sent one (by a self lookup or an earlier
   * introduction), and its answer added as found nodes. A neighbour we learned of from
   * somebody else's answer has never heard of us, and a self lookup that ran before it
   * joined did not reach it; one request both puts us in its table (we are near it, in a
   * bucket with room) and brings us its nearest. Beyond geth, where nodes that join
   * together meet only at the next refresh. Nothing is sent while the table holds fewer
   * than `bucketSize` nodes (a self lookup then asks them all) or once every neighbour
   * was told. Resolves whether a request went out; never rejects.
   */
  async introduceNext (options: AbortOptions): Promise<boolean> {
    const { table, bucketSize } = this.init
    if (table.size < bucketSize) {
      return false
    }
    const next = table.closest(table.selfKey, bucketSize).find(node => !this.introduced.has(keyText(node.key)))
    if (next == null) {
      return false
    }
    this.markIntroduced(next.key)
    try {
      const found = await this.findnode({ id: next.id, key: next.key, multiaddrs: next.addrs }, table.selfKey, options)
      // the table refuses self, as it does for a lookup's answers
      found.forEach(info => table.addFoundNode(info))
    } catch {
      // counted by findnode when it was the peer's fault; the next run tells the next node
    }
    return true
  }

  private markIntroduced (key: Uint8Array): void {
    const text = keyText(key)
    this.introduced.delete(text)
    this.introduced.add(text)
    for (const oldest of this.introduced) {
      if (this.introduced.size <= MAX_INTRODUCED_NEIGHBOURS) {
        break
      }
      this.introduced.delete(oldest)
    }
  }

  /** Waits for the node database bookkeeping of answers already in (`stop()` does). */
  async drain (): Promise<void> {
    while (this.bookkeeping.size > 0) {
      await Promise.allSettled([...this.bookkeeping])
    }
  }

  /**
   * Port of geth `Table.findnode`: a FIND_NODE request with failure counting. A failed or
   * empty answer adds one to the node's consecutive failures in the node database; at
   * `maxFindnodeFailures` it is dropped (if its bucket keeps enough entries). A good answer
   * resets the count (geth decremented it) and proves the node alive; an answer carrying a
   * forged or mismatched signed record counts as a failed one. Only the peer's own
   * failures count (`isPeerFault`): a cancelled request, or one that timed out while our
   * own event loop was overloaded, is never charged. The lookup does not wait for the
   * node database: the counting runs behind it, one read-modify-write per answer.
   */
  private async findnode (node: LookupNode, target: Uint8Array, options: AbortOptions): Promise<PeerInfo[]> {
    let found: PeerInfo[] = []
    let error: unknown
    // an answer with a forged or mismatched record counts against its sender, as a bad one
    let refusedRecords = false
    let via: Connection | undefined
    try {
      found = await this.init.client.findNode({ id: node.id, multiaddrs: node.multiaddrs }, target, {
        ...options,
        onRefusedRecord: () => { refusedRecords = true },
        onAnsweredOver: connection => { via = connection }
      })
    } catch (err) {
      error = err
    }
    if (!this.init.running()) {
      throw error ?? new NotStartedError('stopped')
    }
    const cancelled = options.signal?.aborted === true
    if (!cancelled && (error == null || isPeerFault(error))) {
      this.count(node, error == null && found.length > 0 && !refusedRecords)
    }
    if (error != null) {
      throw error
    }
    this.init.onAnswer({ id: node.id, multiaddrs: node.multiaddrs }, via)
    return found
  }

  /** Records one findnode outcome in the node database, in the background. */
  private count (node: LookupNode, ok: boolean): void {
    const { db, table, log } = this.init
    const task: Promise<void> = db.recordFindnode(node.id, ok, ok ? this.init.now() : undefined)
      .then(fails => {
        if (fails >= this.init.maxFindnodeFailures && this.init.running() && table.dropFailedNode(node.id)) {
          log('dropped %p after %d failed requests', node.id, fails)
        }
      })
      .catch(err => { log.error('node database update failed - %e', err) })
      .finally(() => { this.bookkeeping.delete(task) })
    this.bookkeeping.add(task)
  }
}
