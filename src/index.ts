/**
 * @packageDocumentation
 *
 * Kademlia peer discovery for js-libp2p v3, after go-ethereum's discovery table
 * (`p2p/discover`): k-buckets with bump-or-add and replacement lists, per-bucket and
 * per-table IP subnet limits, liveness revalidation by ping, a node database that keeps
 * long-lived nodes, periodic refresh lookups, an alpha-concurrent iterative lookup and
 * random node reads. It emits `peer` events and, since libp2p v3 no longer auto-dials,
 * dials what it finds to keep the node connected.
 *
 * It needs `@libp2p/identify` (it learns requesters' listen addresses from the peer store).
 *
 * @example
 *
 * ```ts
 * import { noise } from '@chainsafe/libp2p-noise'
 * import { identify } from '@libp2p/identify'
 * import { tcp } from '@libp2p/tcp'
 * import { yamux } from '@libp2p/yamux'
 * import { LevelDatastore } from 'datastore-level'
 * import { createLibp2p } from 'libp2p'
 * import { kadDiscovery } from 'libp2p-kad-discovery'
 *
 * const datastore = new LevelDatastore('./peers-db') // seeds survive restarts
 * await datastore.open()
 * const node = await createLibp2p({
 *   datastore,
 *   addresses: { listen: ['/ip4/0.0.0.0/tcp/0'] },
 *   transports: [tcp()],
 *   connectionEncrypters: [noise()],
 *   streamMuxers: [yamux()],
 *   services: {
 *     identify: identify(),
 *     discovery: kadDiscovery({ bootnodes: ['/ip4/203.0.113.7/tcp/4001/p2p/12D3KooW...'] })
 *   }
 * })
 * const connected = new Set<string>()
 * node.addEventListener('peer:connect', (evt) => { connected.add(evt.detail.toString()) })
 * const closest = await node.services.discovery.lookup(node.peerId)
 * ```
 */

import { KadDiscovery as KadDiscoveryClass } from './service/discovery.js'
import { resolveInit } from './service/init.js'
import type { KadDiscoveryComponents } from './service/discovery.js'
import type { KadDiscoveryInit } from './service/init.js'
import type { BucketSnapshot } from './table/types.js'
import type { AbortOptions, PeerDiscovery, PeerId, PeerInfo, Startable } from '@libp2p/interface'

export { PROTOCOL } from './constants.js'
export { CorruptRecordError, RateLimitedError, UnexpectedResponseError } from './errors.js'
export type { KadDiscoveryComponents } from './service/discovery.js'
export type { AutoDialInit, KadDiscoveryInit } from './service/init.js'
export type { BucketSnapshot, TableNode } from './table/types.js'

/**
 * The discovery service `kadDiscovery()` builds: a libp2p `PeerDiscovery` (`peer` events)
 * and `Startable`, with lookups and random node reads.
 */
export interface KadDiscovery extends PeerDiscovery, Startable {
  /**
   * The iterative Kademlia lookup: up to `bucketSize` nodes closest to `target`, closest
   * first, every one of which answered. A `Uint8Array` target is a 32-byte key; a PeerId
   * is hashed (`sha256` of its multihash) to its key.
   */
  lookup(target: PeerId | Uint8Array, options?: AbortOptions): Promise<PeerInfo[]>
  /** Up to `count` distinct table nodes, chosen uniformly at random. */
  readRandomNodes(count: number): PeerInfo[]
  /**
   * An endless stream of fresh random nodes: table reads, then random lookups (at least
   * 1 s apart) when those run out. Ends when aborted or when the service stops.
   */
  randomNodes(options?: AbortOptions): AsyncGenerator<PeerInfo>
  /** Every node in the table. */
  nodes(): PeerInfo[]
  /** How many nodes the table holds. */
  readonly size: number
  /** Every bucket, with its entries (most recently live first) and replacements. */
  buckets(): BucketSnapshot[]
  /** Runs a refresh now (or joins the running one) and waits for it. */
  refresh(options?: AbortOptions): Promise<void>
}

/**
 * Creates the discovery service, for `services: { discovery: kadDiscovery(init) }` or
 * `peerDiscovery: [kadDiscovery(init)]`. Throws `InvalidParametersError` on a bad `init`.
 */
export function kadDiscovery (init: KadDiscoveryInit = {}): (components: KadDiscoveryComponents) => KadDiscovery {
  resolveInit(init)
  return (components: KadDiscoveryComponents) => new KadDiscoveryClass(components, init)
}
