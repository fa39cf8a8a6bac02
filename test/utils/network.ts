import { kadDiscovery } from '../../src/index.js'
import { distanceCompare, keyOf } from '../../src/table/key.js'
import { TestNodes } from './libp2p.js'
import type { TestNode, TestNodeOptions } from './libp2p.js'
import type { KadDiscovery, KadDiscoveryInit } from '../../src/index.js'
import type { PeerInfo } from '@libp2p/interface'

/** A test node running the discovery service. */
export type DiscoveryNode = TestNode<{ discovery: KadDiscovery }>

/** Settings that make a small network converge fast in tests. */
export const FAST: KadDiscoveryInit = {
  revalidateInterval: 200,
  copyNodesInterval: 500,
  requestTimeout: 2000
}

/**
 * A network of discovery nodes: `size - 1` nodes each given only the first node as their
 * bootnode. Everything else as `init` says.
 */
export async function startNetwork (nodes: TestNodes, size: number, init: KadDiscoveryInit = {}, options: Omit<TestNodeOptions<{ discovery: KadDiscovery }>, 'services'> = {}): Promise<DiscoveryNode[]> {
  const boot = await nodes.create({ ...options, services: { discovery: kadDiscovery({ ...FAST, ...init }) } })
  const bootnodes = [boot.getMultiaddrs()[0]!.toString()]
  const rest = await nodes.createMany(size - 1, { ...options, services: { discovery: kadDiscovery({ ...FAST, ...init, bootnodes }) } })
  return [boot, ...rest]
}

/** The share of the true `k` closest nodes (among `all`) that `found` holds. */
export function accuracy (found: PeerInfo[], all: DiscoveryNode[], target: Uint8Array, k = 16): number {
  const truth = all
    .map(n => ({ id: n.peerId.toString(), key: keyOf(n.peerId) }))
    .sort((a, b) => distanceCompare(target, a.key, b.key))
    .slice(0, k)
  const want = new Set(truth.map(t => t.id))
  return found.slice(0, k).filter(f => want.has(f.id.toString())).length / Math.min(k, truth.length)
}
