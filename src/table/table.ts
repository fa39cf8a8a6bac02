import { BUCKET_SIZE, KEY_BITS, MAX_REPLACEMENTS, N_BUCKETS } from '../constants.js'
import { Bucket, sameAddrs, sameNet, snapshotNode } from './bucket.js'
import { ownPeerId } from './detach.js'
import { DistinctNetSet, netAddressOf, tableNetLimits } from './ip-limits.js'
import { keyOf, keysEqual, logDistance } from './key.js'
import { findClosest } from './nodes-by-distance.js'
import { sample } from './random.js'
import { pickBucketToRevalidate, RevalidationOutcome } from './revalidation.js'
import { AddResult, RemoveReason } from './types.js'
import type { Entry } from './bucket.js'
import type { NetAddress, NetLimits } from './ip-limits.js'
import type { BucketSnapshot, ClosestOptions, Clock, NodeInfo, RandomSource, TableInit, TableNode } from './types.js'
import type { PeerId } from '@libp2p/interface'

/**
 * The Kademlia node table, a port of geth's `p2p/discover.Table` without its I/O: pure and
 * synchronous, every outcome returned as a value. The service does the pinging and the
 * lookups and reports back through `addFoundNode`, `addInboundNode`, `revalidated` and
 * `dropFailedNode`; since its awaits interleave, every call re-checks the table first.
 */
export class Table {
  readonly self: PeerId
  readonly selfKey: Uint8Array
  readonly bucketSize: number
  readonly maxReplacements: number
  /** The IP limits in force, per bucket and per table. */
  readonly ipLimits: { bucket: NetLimits, table: NetLimits }
  // BOUNDED: nBuckets buckets
  private readonly bucketList: Bucket[]
  /** geth `tab.ips`. */
  private readonly ips: DistinctNetSet
  private readonly minDistance: number
  private readonly clock: Clock
  private readonly random: RandomSource
  private readonly init: TableInit
  private count = 0
  private initDoneFlag = false

  constructor (init: TableInit) {
    this.init = init
    this.self = init.self
    this.selfKey = keyOf(init.self)
    this.clock = init.clock
    this.random = init.random
    this.bucketSize = init.bucketSize ?? BUCKET_SIZE
    this.maxReplacements = init.maxReplacements ?? MAX_REPLACEMENTS
    const nBuckets = init.nBuckets ?? N_BUCKETS
    this.minDistance = KEY_BITS - nBuckets
    this.ipLimits = tableNetLimits(init)
    this.bucketList = Array.from({ length: nBuckets }, (_, i) => new Bucket(i, this.ipLimits.bucket))
    this.ips = new DistinctNetSet(this.ipLimits.table)
  }

  /** How many nodes the buckets hold (replacements not counted). */
  get size (): number {
    return this.count
  }

  /** How many buckets there are. */
  get nBuckets (): number {
    return this.bucketList.length
  }

  /** Whether the first refresh has finished (geth `initDone`): inbound adds wait for it. */
  get initDone (): boolean {
    return this.initDoneFlag
  }

  /** Marks the first refresh as finished; inbound adds are accepted from now on. */
  setInitDone (): void {
    this.initDoneFlag = true
  }

  /** Port of geth `Table.bucketAtDistance`. */
  bucketAtDistance (distance: number): number {
    return distance <= this.minDistance ? 0 : distance - this.minDistance - 1
  }

  /** The index of the bucket a key belongs to (geth `Table.bucket`). */
  bucketIndexOf (key: Uint8Array): number {
    return this.bucketAtDistance(logDistance(this.selfKey, key))
  }

  /** The log distances a bucket covers, `[min, max]`. */
  bucketDistances (index: number): [number, number] {
    return index === 0 ? [1, this.minDistance + 1] : [this.minDistance + 1 + index, this.minDistance + 1 + index]
  }

  /** The entry with this peer id, as a copy, or `undefined`. */
  getNode (id: PeerId): TableNode | undefined {
    const key = keyOf(id)
    const bucket = this.bucketFor(key)
    const entry = bucket.entries[bucket.indexOf(key)]
    return entry == null ? undefined : snapshotNode(entry)
  }

  /**
   * Port of geth v1.9 `Table.addSeenNode`, for nodes heard of from others (NODES answers,
   * seeds, bootnodes): appended at the back when its bucket has room and the IP limits
   * allow, else kept as a replacement. An entry already present is left exactly as it is:
   * hearsay never moves or re-addresses a node ("False Friends" eclipse). The one
   * exception is not hearsay: a node that comes with a verified signed peer record
   * (`info.recordSeq`) newer than the entry's goes to `updateFromRecord`.
   */
  addFoundNode (info: NodeInfo): AddResult {
    const prepared = this.prepare(info)
    if (typeof prepared === 'string') {
      return prepared
    }
    const bucket = this.bucketFor(prepared.key)
    if (bucket.indexOf(prepared.key) >= 0) {
      return prepared.recordSeq != null ? this.readdress(bucket, prepared) : AddResult.Present
    }
    if (bucket.entries.length >= this.bucketSize) {
      return this.addReplacement(bucket, prepared)
    }
    if (!this.addIP(bucket, prepared.net)) {
      this.addReplacement(bucket, prepared)
      return AddResult.IpLimit
    }
    bucket.entries.push(prepared)
    this.entered(bucket, prepared)
    return AddResult.Added
  }

  /**
   * Port of geth v1.9 `Table.addVerifiedNode`, for nodes that proved themselves (they
   * answered us, or sent a valid request over their own connection): bumped to the front
   * with their new addresses, or added at the front. Ignored until `initDone`.
   */
  addInboundNode (info: NodeInfo): AddResult {
    if (!this.initDoneFlag) {
      return AddResult.NotReady
    }
    const prepared = this.prepare(info)
    if (typeof prepared === 'string') {
      return prepared
    }
    const bucket = this.bucketFor(prepared.key)
    if (bucket.indexOf(prepared.key) >= 0) {
      return this.bumpInBucket(bucket, prepared) ? AddResult.Bumped : AddResult.IpLimit
    }
    if (bucket.entries.length >= this.bucketSize) {
      return this.addReplacement(bucket, prepared)
    }
    if (!this.addIP(bucket, prepared.net)) {
      this.addReplacement(bucket, prepared)
      return AddResult.IpLimit
    }
    bucket.entries.unshift(prepared)
    this.entered(bucket, prepared)
    return AddResult.Added
  }

  /**
   * The entry of `info.id` takes the addresses of a signed peer record the caller has
   * verified, when its `recordSeq` is higher than the entry's (or the entry has none):
   * the node itself said it moved, so this is not hearsay (geth re-addresses an entry
   * from a newer ENR the same way). The entry keeps its place and liveness checks; the IP
   * limits are checked again for the new subnet, and if they refuse, the entry stays as it
   * was. Returns `Readdressed`, `Present` (not newer, or the same addresses: only the seq
   * is taken) or `IpLimit`; a node not in its bucket is offered as a found node
   * (`addFoundNode`, which keeps its `recordSeq`).
   */
  updateFromRecord (info: NodeInfo & { recordSeq: bigint }): AddResult {
    const prepared = this.prepare(info)
    if (typeof prepared === 'string') {
      return prepared
    }
    const bucket = this.bucketFor(prepared.key)
    if (bucket.indexOf(prepared.key) < 0) {
      return this.addFoundNode(info)
    }
    return this.readdress(bucket, prepared)
  }

  private readdress (bucket: Bucket, node: Entry): AddResult {
    const entry = bucket.entries[bucket.indexOf(node.key)]
    if (entry == null || node.recordSeq == null || (entry.recordSeq != null && node.recordSeq <= entry.recordSeq)) {
      return AddResult.Present
    }
    if (sameAddrs(entry, node)) {
      entry.recordSeq = node.recordSeq
      return AddResult.Present
    }
    if (!sameNet(entry.net, node.net)) {
      this.removeIP(bucket, entry.net)
      if (!this.addIP(bucket, node.net)) {
        this.addIP(bucket, entry.net)
        return AddResult.IpLimit
      }
    }
    entry.addrs = node.addrs
    entry.net = node.net
    entry.addrsChecked = false
    entry.recordSeq = node.recordSeq
    this.init.onNodeUpdated?.(snapshotNode(entry))
    return AddResult.Readdressed
  }

  /**
   * Port of geth v1.9 `Table.bumpInBucket`: moves the entry to the front and takes the new
   * addresses. When they put it in another subnet, the IP limits are checked again; if
   * they refuse, the entry keeps its old addresses and place and `false` is returned.
   */
  private bumpInBucket (bucket: Bucket, node: Entry): boolean {
    const entry = bucket.entries[bucket.indexOf(node.key)]
    if (entry == null) {
      return false
    }
    const readdressed = !sameAddrs(entry, node)
    if (readdressed && !sameNet(entry.net, node.net)) {
      this.removeIP(bucket, entry.net)
      if (!this.addIP(bucket, node.net)) {
        this.addIP(bucket, entry.net)
        return false
      }
    }
    if (readdressed) {
      entry.addrs = node.addrs
      entry.addrsChecked = false
    }
    entry.net = node.net
    bucket.bump(entry.key)
    if (readdressed) {
      this.init.onNodeUpdated?.(snapshotNode(entry))
    }
    return true
  }

  /**
   * Port of geth `Table.addReplacement`: newest first, at most `maxReplacements`, a node
   * already listed is left where it is. Beyond geth, at most `bucketIpLimit` replacements
   * of one subnet.
   */
  private addReplacement (bucket: Bucket, node: Entry): AddResult {
    if (bucket.replacementIndexOf(node.key) >= 0) {
      return AddResult.Replacement
    }
    if (!bucket.replacementIps.add(node.net)) {
      return AddResult.IpLimit
    }
    bucket.replacements.unshift(node)
    if (bucket.replacements.length > this.maxReplacements) {
      const dropped = bucket.replacements.pop() as Entry
      bucket.replacementIps.remove(dropped.net)
    }
    return AddResult.Replacement
  }

  /**
   * Port of geth `Table.replace`: when `last` is still the last entry of its bucket, a
   * random replacement that fits the IP limits takes its place; with none, `last` is
   * deleted. Returns the replacement, or `undefined`.
   */
  private replace (bucket: Bucket, last: Entry): Entry | undefined {
    this.removeIP(bucket, last.net)
    bucket.entries.pop()
    this.count--
    // try replacements in random order until one fits the IP limits
    while (bucket.replacements.length > 0) {
      const candidate = bucket.replacements[this.random.int(bucket.replacements.length)] as Entry
      bucket.deleteReplacement(candidate.key)
      if (this.addIP(bucket, candidate.net)) {
        candidate.addedAt = this.clock()
        candidate.livenessChecks = 0
        bucket.entries.push(candidate)
        this.count++
        this.init.onNodeRemoved?.(snapshotNode(last), RemoveReason.Replaced)
        this.init.onNodeAdded?.(snapshotNode(candidate))
        return candidate
      }
    }
    this.init.onNodeRemoved?.(snapshotNode(last), RemoveReason.Dead)
    return undefined
  }

  /** Port of geth `Table.deleteInBucket`: removes the entry and releases its IP slots. */
  private deleteInBucket (bucket: Bucket, key: Uint8Array, reason: RemoveReason): boolean {
    const i = bucket.indexOf(key)
    if (i < 0) {
      return false
    }
    const [entry] = bucket.entries.splice(i, 1) as [Entry]
    this.removeIP(bucket, entry.net)
    this.count--
    this.init.onNodeRemoved?.(snapshotNode(entry), reason)
    return true
  }

  /** Port of geth `Table.delete`: removes a node from its bucket. Returns whether it was there. */
  delete (id: PeerId, reason: RemoveReason = RemoveReason.Deleted): boolean {
    const key = keyOf(id)
    return this.deleteInBucket(this.bucketFor(key), key, reason)
  }

  /**
   * After geth's lookup `findnode` (and v1.13's `handleTrackRequest`): a node that failed
   * `maxFindnodeFailures` requests in a row is dropped, but only while its bucket holds
   * at least `bucketSize / 4` entries, so our own connectivity trouble cannot empty it.
   */
  dropFailedNode (id: PeerId): boolean {
    const key = keyOf(id)
    const bucket = this.bucketFor(key)
    if (bucket.entries.length < this.bucketSize / 4) {
      return false
    }
    return this.deleteInBucket(bucket, key, RemoveReason.FindnodeFailures)
  }

  /**
   * Port of geth `Table.nodeToRevalidate`: the last entry of a random non-empty bucket,
   * with its bucket index, or `undefined` when the table is empty.
   */
  nodeToRevalidate (): { node: TableNode, bucket: number } | undefined {
    return this.lastOf(pickBucketToRevalidate(this.bucketList, this.random))
  }

  /**
   * The fast half of revalidation, after geth v1.14's fast list: the last entry of a
   * random bucket whose last entry has passed no liveness check yet (nor had its addresses
   * checked by an answer, `addrsChecked`), or `undefined` when no bucket ends in one.
   * Nodes heard of are appended at the back (`addFoundNode`), so this is where they wait
   * for the check of their addresses.
   */
  unprovenToRevalidate (): { node: TableNode, bucket: number } | undefined {
    return this.lastOf(pickBucketToRevalidate(this.bucketList, this.random, true))
  }

  /**
   * An answer came from `node` over a connection that reaches it at the addresses of its
   * entry: they are checked, as the first revalidation ping would check them, so the fast
   * lane (`unprovenToRevalidate`) leaves it alone. It is not a liveness check: answers
   * still prefer nodes that passed a ping, as before. Returns whether the entry, with those
   * addresses, was found.
   */
  addrsChecked (node: TableNode): boolean {
    const bucket = this.bucketFor(node.key)
    const entry = bucket.entries[bucket.indexOf(node.key)]
    if (entry == null || !sameAddrs(entry, node)) {
      return false
    }
    entry.addrsChecked = true
    return true
  }

  private lastOf (bucket: Bucket | undefined): { node: TableNode, bucket: number } | undefined {
    return bucket == null ? undefined : { node: snapshotNode(bucket.last() as Entry), bucket: bucket.index }
  }

  /**
   * The second half of geth `Table.doRevalidate`, called when the ping of `node` (from
   * `nodeToRevalidate`) has finished. Alive: moved to the front, one more liveness check.
   * Dead: replaced (`replace`) if it is still the last entry, else left alone.
   */
  revalidated (node: TableNode, alive: boolean): RevalidationOutcome {
    const bucket = this.bucketFor(node.key)
    if (alive) {
      const entry = bucket.bump(node.key)
      if (entry == null) {
        return RevalidationOutcome.Moved
      }
      entry.livenessChecks++
      return RevalidationOutcome.Alive
    }
    const last = bucket.last()
    if (last == null || !keysEqual(last.key, node.key)) {
      return RevalidationOutcome.Moved
    }
    return this.replace(bucket, last) == null ? RevalidationOutcome.Removed : RevalidationOutcome.Replaced
  }

  /**
   * Port of geth v1.9 `Table.findnodeByID`: the `n` entries closest to `target`, closest
   * first. With `preferLive`, nodes that passed a liveness check come first in the
   * choice; the rest only fill the places the live ones cannot.
   */
  closest (target: Uint8Array, n: number, options: ClosestOptions = {}): TableNode[] {
    return findClosest(this.allEntries(), target, n, options.preferLive === true).map(snapshotNode)
  }

  /**
   * After geth v1.9 `Table.ReadRandomNodes`: up to `n` distinct entries chosen uniformly
   * (a partial Fisher–Yates shuffle). Departs from the seed's version, which took bucket
   * heads (biased towards far buckets), returned `i + 1` (one too many) and returned
   * nothing before `initDone`: here seeds are readable at once, so the dialer can start.
   */
  readRandomNodes (n: number): TableNode[] {
    return sample(this.allEntries(), n, this.random).map(snapshotNode)
  }

  /** Every entry, as copies, nearest bucket last. */
  nodes (): TableNode[] {
    return this.bucketList.flatMap(b => b.entries.map(snapshotNode))
  }

  /** How many entries each bucket holds, by index (cheaper than `buckets()`). */
  bucketFill (): number[] {
    return this.bucketList.map(b => b.entries.length)
  }

  /** Every bucket with its entries and replacements, as copies. */
  buckets (): BucketSnapshot[] {
    return this.bucketList.map(b => ({
      index: b.index,
      entries: b.entries.map(snapshotNode),
      replacements: b.replacements.map(snapshotNode)
    }))
  }

  /** Per subnet, how many entries the table-wide IP set counts, for checks and metrics. */
  tableIpCounts (): Array<[string, number]> {
    return this.ips.entries()
  }

  /** Per subnet, how many entries a bucket's IP set counts. */
  bucketIpCounts (index: number): Array<[string, number]> {
    return this.bucketList[index]?.ips.entries() ?? []
  }

  private allEntries (): Entry[] {
    const all: Entry[] = []
    for (const bucket of this.bucketList) {
      all.push(...bucket.entries)
    }
    return all
  }

  /** Checks a node before it may enter; a string is the refusal. */
  private prepare (info: NodeInfo): Entry | AddResult.Self | AddResult.NoAddress {
    if (info.id.equals(this.self)) {
      return AddResult.Self
    }
    const net = netAddressOf(info.multiaddrs)
    if (net == null) {
      return AddResult.NoAddress
    }
    return {
      id: ownPeerId(info.id),
      key: keyOf(info.id),
      addrs: [...info.multiaddrs],
      addedAt: this.clock(),
      livenessChecks: 0,
      net,
      ...(info.recordSeq != null ? { recordSeq: info.recordSeq } : {})
    }
  }

  private bucketFor (key: Uint8Array): Bucket {
    return this.bucketList[this.bucketIndexOf(key)] as Bucket
  }

  /** The bookkeeping when a node enters a bucket (geth `bumpOrAdd`'s tail). */
  private entered (bucket: Bucket, entry: Entry): void {
    bucket.deleteReplacement(entry.key)
    entry.addedAt = this.clock()
    this.count++
    this.init.onNodeAdded?.(snapshotNode(entry))
  }

  /** Port of geth `Table.addIP`: table first, then bucket, rolled back if the bucket refuses. */
  private addIP (bucket: Bucket, net: NetAddress): boolean {
    if (!this.ips.add(net)) {
      return false
    }
    if (!bucket.ips.add(net)) {
      this.ips.remove(net)
      return false
    }
    return true
  }

  /** Port of geth `Table.removeIP`. */
  private removeIP (bucket: Bucket, net: NetAddress): void {
    this.ips.remove(net)
    bucket.ips.remove(net)
  }
}
