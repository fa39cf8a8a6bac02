import { InvalidParametersError } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { CODE_P2P, multiaddr } from '@multiformats/multiaddr'
import * as c from '../constants.js'
import type { PeerInfo } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Datastore } from 'interface-datastore'

/** Settings of the auto-dialer (DESIGN.md §8). */
export interface AutoDialInit {
  /** Whether the module dials the nodes it finds. @default true */
  enabled?: boolean
  /**
   * Dial while fewer outbound connections than this are the dialer's own (dialed, or
   * request connections it adopted); inbound connections and discovery's request
   * connections never count (geth dials MaxPeers / 3). @default 16
   */
  minConnections?: number
  /** Dials in flight at once. @default 4 */
  maxParallelDials?: number
  /**
   * A node is not dialed again within this many ms (geth `dialHistoryExpiration`); after a
   * failed dial the wait doubles per failure in a row, up to 30 minutes. @default 35000
   */
  dialHistoryExpiration?: number
}

/** Options of `kadDiscovery()`; every constant of geth's table can be set. */
export interface KadDiscoveryInit {
  /** Bootnodes: multiaddrs with a `/p2p/<peer id>` component. @default [] */
  bootnodes?: Array<string | Multiaddr>
  /** Where the node database lives. @default the libp2p node's datastore */
  datastore?: Datastore
  /** The wire protocol id. @default '/kad-discovery/1.0.0' */
  protocol?: string
  /** The auto-dialer; `{ enabled: false }` turns it off. @default { enabled: true, minConnections: 16, maxParallelDials: 4 } */
  autoDial?: AutoDialInit
  /** Whether LAN and loopback addresses are exempt from the IP limits. @default true */
  allowLan?: boolean
  /**
   * Accept from NODES answers only nodes that come with a verified signed peer record,
   * at the addresses their peer signed: a lookup then never dials an address nobody
   * signed. Costs answer size (a record is about 200–1000 bytes) and a signature check per
   * node received, and drops nodes whose records the answering peer does not hold (it
   * holds one only for peers it ran identify with). @default false
   */
  requireSignedRecords?: boolean
  /**
   * Beyond geth: each refresh also looks up a random key in every bucket (farthest first,
   * down to the first empty one) that no lookup passed through since the last refresh.
   * `false` gives geth's refresh (self lookup + 3 random lookups) alone. @default true
   */
  bucketRefresh?: boolean
  /** Entries per bucket, Kademlia's k (geth `bucketSize`). @default 16 */
  bucketSize?: number
  /** Number of buckets; log distances ≤ 256 − nBuckets share bucket 0 (geth `nBuckets`). @default 17 */
  nBuckets?: number
  /** Replacement list length per bucket (geth `maxReplacements`). @default 10 */
  maxReplacements?: number
  /** Lookup concurrency (geth `alpha`). @default 3 */
  alpha?: number
  /** Nodes of one subnet per bucket (geth `bucketIPLimit`). @default 2 */
  bucketIpLimit?: number
  /** IPv4 prefix length of a bucket subnet (geth `bucketSubnet`; IPv6 uses /48). @default 24 */
  bucketSubnet?: number
  /** Nodes of one subnet per table (geth `tableIPLimit`). @default 10 */
  tableIpLimit?: number
  /** IPv4 prefix length of a table subnet (geth `tableSubnet`; IPv6 uses /48). @default 24 */
  tableSubnet?: number
  /** Consecutive failed FIND_NODE requests before a node is dropped (geth `maxFindnodeFailures`). @default 5 */
  maxFindnodeFailures?: number
  /** ms between refreshes (geth `refreshInterval`). @default 1800000 */
  refreshInterval?: number
  /** Revalidation runs after a random delay below this many ms (geth `revalidateInterval`). @default 10000 */
  revalidateInterval?: number
  /**
   * Entries that already passed a liveness check are checked again at most once per
   * random delay below this many ms; entries that never did keep `revalidateInterval`
   * (after geth v1.14's slow revalidation list). A check of an entry we hold no connection
   * to costs a libp2p dial. @default revalidateInterval × 6 (60000)
   */
  provenRevalidateInterval?: number
  /** ms between writes of live nodes to the node database (geth `copyNodesInterval`). @default 30000 */
  copyNodesInterval?: number
  /** A node is persisted once it has been in the table this many ms (geth `seedMinTableTime`). @default 300000 */
  seedMinTableTime?: number
  /** Seeds read from the node database at each refresh (geth `seedCount`). @default 30 */
  seedCount?: number
  /** Seeds must have answered within this many ms (geth `seedMaxAge`). @default 432000000 */
  seedMaxAge?: number
  /** Nodes with no answer for this many ms leave the node database (geth `dbNodeExpiration`). @default 86400000 */
  nodeExpiration?: number
  /** ms between sweeps of expired nodes (geth `dbCleanupCycle`). @default 3600000 */
  expireInterval?: number
  /** Time limit of one request, dial included, in ms. @default 5000 */
  requestTimeout?: number
  /**
   * Time budget of one lookup, in ms: past it, the lookup ends with the nodes that
   * answered so far and cancels its requests in flight. @default 20000
   */
  lookupTimeout?: number
  /** Largest request or PING/PONG frame, in bytes. @default 4096 */
  maxMessageSize?: number
  /** Largest NODES frame, in bytes. @default 32816 */
  maxNodesMessageSize?: number
  /** Inbound streams of this protocol open at once. @default 32 */
  maxInboundStreams?: number
  /**
   * Connections opened only for discovery's requests that are kept open at once, idle, for
   * the next request (at most 2 s each): past it, the one idle longest closes. 0 closes
   * each once its requests are done. @default 16
   */
  maxRequestConnections?: number
}

/** The init with every default filled in and every value checked. */
export interface ResolvedInit extends Required<Omit<KadDiscoveryInit, 'datastore' | 'bootnodes' | 'autoDial'>> {
  datastore?: Datastore
  bootnodes: PeerInfo[]
  autoDial: Required<AutoDialInit>
}

type NumericKey = { [K in keyof ResolvedInit]-?: ResolvedInit[K] extends number ? K : never }[keyof ResolvedInit]

const DEFAULTS: Pick<ResolvedInit, NumericKey> = {
  bucketSize: c.BUCKET_SIZE,
  nBuckets: c.N_BUCKETS,
  maxReplacements: c.MAX_REPLACEMENTS,
  alpha: c.ALPHA,
  bucketIpLimit: c.BUCKET_IP_LIMIT,
  bucketSubnet: c.BUCKET_SUBNET,
  tableIpLimit: c.TABLE_IP_LIMIT,
  tableSubnet: c.TABLE_SUBNET,
  maxFindnodeFailures: c.MAX_FINDNODE_FAILURES,
  refreshInterval: c.REFRESH_INTERVAL,
  revalidateInterval: c.REVALIDATE_INTERVAL,
  provenRevalidateInterval: c.REVALIDATE_INTERVAL * c.PROVEN_REVALIDATE_FACTOR,
  copyNodesInterval: c.COPY_NODES_INTERVAL,
  seedMinTableTime: c.SEED_MIN_TABLE_TIME,
  seedCount: c.SEED_COUNT,
  seedMaxAge: c.SEED_MAX_AGE,
  nodeExpiration: c.NODE_EXPIRATION,
  expireInterval: c.DB_CLEANUP_INTERVAL,
  requestTimeout: c.REQUEST_TIMEOUT,
  lookupTimeout: c.LOOKUP_TIMEOUT,
  maxMessageSize: c.MAX_MESSAGE_SIZE,
  maxNodesMessageSize: c.MAX_NODES_MESSAGE_SIZE,
  maxInboundStreams: c.MAX_INBOUND_STREAMS,
  maxRequestConnections: c.MAX_REQUEST_CONNECTIONS
}

// inclusive bounds of each numeric setting
const RANGES: Record<NumericKey, [number, number]> = {
  bucketSize: [1, 1024],
  nBuckets: [1, 256],
  maxReplacements: [0, 1024],
  alpha: [1, 64],
  bucketIpLimit: [1, 1024],
  bucketSubnet: [1, 32],
  tableIpLimit: [1, 1_000_000],
  tableSubnet: [1, 32],
  maxFindnodeFailures: [1, 1000],
  refreshInterval: [1, 2 ** 31 - 1],
  revalidateInterval: [1, 2 ** 31 - 1],
  provenRevalidateInterval: [1, 2 ** 31 - 1],
  copyNodesInterval: [1, 2 ** 31 - 1],
  seedMinTableTime: [0, Number.MAX_SAFE_INTEGER],
  seedCount: [0, 100_000],
  seedMaxAge: [1, Number.MAX_SAFE_INTEGER],
  nodeExpiration: [1, Number.MAX_SAFE_INTEGER],
  expireInterval: [1, 2 ** 31 - 1],
  requestTimeout: [1, 2 ** 31 - 1],
  lookupTimeout: [1, 2 ** 31 - 1],
  maxMessageSize: [64, 1024 * 1024],
  maxNodesMessageSize: [64, 16 * 1024 * 1024],
  maxInboundStreams: [1, 100_000],
  maxRequestConnections: [0, 100_000]
}

function checkInteger (name: string, value: unknown, [min, max]: [number, number]): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidParametersError(`${name} must be an integer from ${min} to ${max}, got ${String(value)}`)
  }
  return value
}

/**
 * Checks `init` and fills in geth's defaults. Throws `InvalidParametersError` on a bad
 * value, so a mistake shows at construction, not as a silent misbehaviour later.
 */
export function resolveInit (init: KadDiscoveryInit = {}): ResolvedInit {
  if (init == null || typeof init !== 'object') {
    throw new InvalidParametersError('init must be an object')
  }
  const numbers = { ...DEFAULTS }
  for (const key of Object.keys(DEFAULTS) as NumericKey[]) {
    const value = init[key]
    numbers[key] = value === undefined ? DEFAULTS[key] : checkInteger(key, value, RANGES[key])
  }
  if (init.provenRevalidateInterval === undefined) {
    // follows a revalidateInterval set alone, as the default does
    numbers.provenRevalidateInterval = Math.min(numbers.revalidateInterval * c.PROVEN_REVALIDATE_FACTOR, RANGES.provenRevalidateInterval[1])
  }
  const protocol = init.protocol ?? c.PROTOCOL
  if (typeof protocol !== 'string' || !protocol.startsWith('/') || protocol.length > 128) {
    throw new InvalidParametersError(`protocol must be a string starting with "/", got ${String(protocol)}`)
  }
  for (const flag of ['allowLan', 'bucketRefresh', 'requireSignedRecords'] as const) {
    if (init[flag] !== undefined && typeof init[flag] !== 'boolean') {
      throw new InvalidParametersError(`${flag} must be a boolean`)
    }
  }
  if (init.datastore != null && typeof init.datastore.get !== 'function') {
    throw new InvalidParametersError('datastore must be an interface-datastore Datastore')
  }
  return {
    ...numbers,
    protocol,
    allowLan: init.allowLan ?? true,
    bucketRefresh: init.bucketRefresh ?? true,
    requireSignedRecords: init.requireSignedRecords ?? false,
    datastore: init.datastore,
    bootnodes: parseBootnodes(init.bootnodes ?? []),
    autoDial: resolveAutoDial(init.autoDial ?? {})
  }
}

function resolveAutoDial (init: AutoDialInit): Required<AutoDialInit> {
  if (init == null || typeof init !== 'object') {
    throw new InvalidParametersError('autoDial must be an object')
  }
  if (init.enabled !== undefined && typeof init.enabled !== 'boolean') {
    throw new InvalidParametersError('autoDial.enabled must be a boolean')
  }
  return {
    enabled: init.enabled ?? true,
    minConnections: init.minConnections === undefined ? c.MIN_CONNECTIONS : checkInteger('autoDial.minConnections', init.minConnections, [0, 100_000]),
    maxParallelDials: init.maxParallelDials === undefined ? c.MAX_PARALLEL_DIALS : checkInteger('autoDial.maxParallelDials', init.maxParallelDials, [1, 1000]),
    dialHistoryExpiration: init.dialHistoryExpiration === undefined ? c.DIAL_HISTORY_EXPIRATION : checkInteger('autoDial.dialHistoryExpiration', init.dialHistoryExpiration, [0, 2 ** 31 - 1])
  }
}

/**
 * Parses bootnodes: each a multiaddr (string or object) ending in `/p2p/<peer id>`.
 * Addresses of one peer are merged into one entry, without their `/p2p/<peer id>`.
 */
export function parseBootnodes (bootnodes: Array<string | Multiaddr>): PeerInfo[] {
  if (!Array.isArray(bootnodes)) {
    throw new InvalidParametersError('bootnodes must be an array of multiaddrs')
  }
  const byPeer = new Map<string, PeerInfo>()
  for (const entry of bootnodes) {
    let ma: Multiaddr
    try {
      ma = typeof entry === 'string' ? multiaddr(entry) : multiaddr(entry.toString())
    } catch (err: any) {
      throw new InvalidParametersError(`bootnode ${String(entry)} is not a valid multiaddr: ${String(err?.message ?? err)}`)
    }
    const peer = ma.getComponents().reverse().find(component => component.name === 'p2p')?.value
    if (peer == null) {
      throw new InvalidParametersError(`bootnode ${ma.toString()} has no /p2p/<peer id> component`)
    }
    let id
    try {
      id = peerIdFromString(peer)
    } catch {
      throw new InvalidParametersError(`bootnode ${ma.toString()} has an invalid peer id`)
    }
    // the table keeps addresses without /p2p/<id>, as identify reports them: one form, so
    // the bootnode is announced once, not again when it answers
    const address = ma.decapsulateCode(CODE_P2P)
    const known = byPeer.get(id.toString())
    if (known == null) {
      byPeer.set(id.toString(), { id, multiaddrs: [address] })
    } else {
      known.multiaddrs.push(address)
    }
  }
  return [...byPeer.values()]
}
