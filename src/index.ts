/**
 * @packageDocumentation
 *
 * Kademlia peer discovery for js-libp2p v3, after go-ethereum's discovery table
 * (`p2p/discover`): k-buckets with replacement lists, per-bucket and per-table IP subnet
 * limits, liveness revalidation, a node database of long-lived nodes, periodic refresh
 * lookups and random node reads for the dialer.
 *
 * @example
 *
 * ```ts
 * import { kadDiscovery } from 'libp2p-kad-discovery'
 * ```
 */

export { CorruptRecordError, RateLimitedError, UnexpectedResponseError } from './errors.js'
export type { BucketSnapshot, TableNode } from './table/types.js'
