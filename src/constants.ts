/**
 * Defaults, after go-ethereum's `p2p/discover/table.go` (v1.8.x) unless noted.
 * Every value can be overridden through `KadDiscoveryInit`.
 */

export const millisecond = 1
export const second = 1000 * millisecond
export const minute = 60 * second
export const hour = 60 * minute
export const day = 24 * hour

/** The wire protocol id. */
export const PROTOCOL = '/kad-discovery/1.0.0'

/** Bits in a node key (sha256). */
export const KEY_BITS = 256
/** Bytes in a node key and a FIND_NODE target. */
export const KEY_LENGTH = KEY_BITS / 8

// geth `bucketSize`: Kademlia's k
export const BUCKET_SIZE = 16
// geth `nBuckets = hashBits / 15`: log distances ≤ 239 share bucket 0
export const N_BUCKETS = 17
// geth `maxReplacements`
export const MAX_REPLACEMENTS = 10
// geth `alpha`
export const ALPHA = 3
// geth `bucketIPLimit`
export const BUCKET_IP_LIMIT = 2
// geth `bucketSubnet`
export const BUCKET_SUBNET = 24
// geth `tableIPLimit`
export const TABLE_IP_LIMIT = 10
// geth `tableSubnet`
export const TABLE_SUBNET = 24
// not geth's 24 bits (geth #20522): an IPv6 site prefix is /48
export const IPV6_SUBNET = 48
// geth `maxFindnodeFailures`
export const MAX_FINDNODE_FAILURES = 5
// geth: a node is only dropped for findnode failures while its bucket keeps at least this many
export const MIN_BUCKET_FILL_FOR_DROP = 4
// geth `refreshInterval`
export const REFRESH_INTERVAL = 30 * minute
// geth `revalidateInterval`
export const REVALIDATE_INTERVAL = 10 * second
// entries that passed a liveness check are checked this many times more slowly (geth v1.14's
// slowRevalidationFactor is 3 over UDP; here such a check dials when no connection is open):
// measured 5–9 min after a 200-node network filled: 6.3 revalidation pings a node a minute,
// 5.0 of them dialing (11.5 and 8.5–9 with one speed)
export const PROVEN_REVALIDATE_FACTOR = 6
// geth `copyNodesInterval`
export const COPY_NODES_INTERVAL = 30 * second
// geth `seedMinTableTime`
export const SEED_MIN_TABLE_TIME = 5 * minute
// geth `seedCount`
export const SEED_COUNT = 30
// geth `seedMaxAge`
export const SEED_MAX_AGE = 5 * day
// geth `dbNodeExpiration`
export const NODE_EXPIRATION = 24 * hour
// geth `dbCleanupCycle`
export const DB_CLEANUP_INTERVAL = hour
// geth `respTimeout` is 500 ms over UDP; ours includes a libp2p dial
export const REQUEST_TIMEOUT = 5 * second
// a lookup's time budget, past which it answers with what it has (none in geth, whose 500 ms
// requests kept lookups short)
export const LOOKUP_TIMEOUT = 20 * second
// geth `maxPacketSize` is 1280 bytes over UDP; a libp2p frame is ours
export const MAX_MESSAGE_SIZE = 4 * 1024
// the largest signed peer record a NODES entry carries: an RSA-2048 record with 16 IPv6
// addresses is 995 bytes, an Ed25519 one 542 (docs/PROTOCOL.md §3)
export const MAX_RECORD_SIZE = 1024
// a NODES answer of bucketSize peers with several multiaddrs each (16 KiB), plus a record
// of MAX_RECORD_SIZE for each of 16 peers with its field tag and 2-byte length: 32 816 bytes
export const MAX_NODES_MESSAGE_SIZE = 16 * 1024 + 16 * (MAX_RECORD_SIZE + 3)
// geth dials MaxPeers / 3 = 16 (p2p/dial.go)
export const MIN_CONNECTIONS = 16
// concurrent outbound dials of the auto-dialer
export const MAX_PARALLEL_DIALS = 4
// geth `dialHistoryExpiration`
export const DIAL_HISTORY_EXPIRATION = 35 * second
// random lookups are at least this far apart in `randomNodes()` (geth's lookup iterator)
export const MIN_RANDOM_LOOKUP_INTERVAL = 1 * second
// inbound streams of our protocol open at once (per connection; a lookup keeps one request open to a peer)
export const MAX_INBOUND_STREAMS = 16
// idle request-only connections kept for reuse. Measured in a 40-node network (the first
// refreshes' tail plus 20 lookups, about 2 300 requests): 1 533 connections opened with 8,
// 1 086 with 16, 497 with 32; but at 200 nodes in one process, 32 (on top of the dialer's
// 16 and the peers' own) took the process to 3.6 GB RSS. 16, a lookup's window: the
// 40-node demo then met its 300 ms median (95–256 ms in three runs; 408 ms with 8)
export const MAX_REQUEST_CONNECTIONS = 16
// bounded memory of which peers were announced with which addresses
export const MAX_ANNOUNCED_PEERS = 4096
// a failed dial is retried after dialHistoryExpiration, doubling per failure up to this
export const MAX_DIAL_BACKOFF = 30 * minute
// peers whose dial history (last dial, failures) the auto-dialer remembers at most
export const MAX_DIAL_HISTORY = 1024
// peers the auto-dialer dials per subnet, as geth's bucketIPLimit (its dialer trusts the table's)
export const DIAL_IP_LIMIT = 2
// the IPv4 subnet of that limit (IPv6 uses IPV6_SUBNET)
export const DIAL_SUBNET = 24
// the first wait of the auto-dialer once its candidates hold nothing new; it doubles up to refreshInterval
export const MIN_IDLE_PULL_DELAY = 1 * second
// the peer store tag on peers the auto-dialer connected to
export const DIAL_TAG = 'kad-discovery'
// its value: below kad-dht's close-peer tag (50), above untagged peers (inbound and request
// connections), so libp2p's pruner closes those first
export const DIAL_TAG_VALUE = 20
// the tag lapses this long after its last renewal, so a crashed node leaves no lasting tag
export const DIAL_TAG_TTL = 30 * minute
// the tag of a live dialed connection is renewed this often, well inside its TTL
export const DIAL_TAG_RENEW_INTERVAL = 10 * minute
/** When the self lookup is first repeated after start; each further repeat waits twice as long (none in geth). */
export const SELF_LOOKUP_REPEAT = minute
/** How often a node introduces itself to one neighbour it has not yet sent a FIND_NODE for its own key (none in geth). */
export const NEIGHBOUR_INTRO_INTERVAL = 5 * second
/** How many nodes the introductions remember having told; the oldest are forgotten first (none in geth). */
export const MAX_INTRODUCED_NEIGHBOURS = 256
/** Contacts turned away before `initDone` that are kept and offered again once it is set (none in geth). */
export const MAX_EARLY_CONTACTS = 32
/** How long background work (refresh lookups, revalidation, the dialer) waits for an overloaded event loop to calm down before it goes ahead anyway (none in geth). */
export const MAX_CALM_WAIT = 2 * minute
/** The first wait of a background task before it looks at the load again; it doubles up to MAX_CALM_RECHECK (none in geth). */
export const CALM_RECHECK = 1 * second
/** The longest wait between two looks at the load of a waiting background task (none in geth). */
export const MAX_CALM_RECHECK = 8 * second
/** The fewest dialed connections the auto-dialer keeps while the node's own event loop is overloaded: half of geth's 16, so that an attacker who saturates the node cannot shed its dialed peers below what the eclipse defence needs (none in geth). */
export const MIN_DIAL_TARGET = 8
/** How long the event loop must stay overloaded before the dial target first shrinks: a start-up burst or a long GC is no reason (none in geth). */
export const DIAL_OVERLOAD_SPAN = 30 * second
/** An overloaded node halves its dial target at most this often (none in geth). */
export const DIAL_TARGET_SHRINK_INTERVAL = 10 * second
/** A node whose event loop is below DIAL_GROW_UTILIZATION raises its dial target by one this often, up to minConnections (none in geth). */
export const DIAL_TARGET_GROW_INTERVAL = 10 * second
/** The event-loop utilisation below which a reduced dial target grows again (none in geth). */
export const DIAL_GROW_UTILIZATION = 0.5
