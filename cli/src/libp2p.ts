import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { kadDiscovery } from 'libp2p-kad-discovery'
import type { Identify } from '@libp2p/identify'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { Libp2pOptions } from 'libp2p'
import type { KadDiscovery, KadDiscoveryInit } from 'libp2p-kad-discovery'

/** A node the CLI runs: identify (the discovery service needs it) and discovery. */
export type CliNode = Libp2p<{ identify: Identify, discovery: KadDiscovery }>

/** How a CLI node is made. */
export interface CliNodeInit {
  /** `tcp`, or `memory` for nodes inside this process (the demo). */
  transport: 'tcp' | 'memory'
  /** Listen addresses; none for a node that only dials out (the crawler). */
  listen: string[]
  /** The discovery service's settings. */
  discovery: KadDiscoveryInit
  /** A fixed identity; a fresh Ed25519 key otherwise. */
  privateKey?: PrivateKey
  /** libp2p connection manager settings. @default libp2p's */
  connectionManager?: Libp2pOptions['connectionManager']
  /** Whether to start it. @default true */
  start?: boolean
}

/**
 * A libp2p v3 node with TCP or memory, noise, yamux, identify and `kadDiscovery`. Noise
 * even in memory: the demo shows the real stack, and plaintext is only a test dependency.
 */
export async function createCliNode (init: CliNodeInit): Promise<CliNode> {
  return createLibp2p({
    ...(init.privateKey != null ? { privateKey: init.privateKey } : {}),
    addresses: { listen: init.listen },
    transports: [init.transport === 'tcp' ? tcp() : memory()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: init.connectionManager,
    services: {
      identify: identify(),
      discovery: kadDiscovery(init.discovery)
    },
    start: init.start ?? true
  })
}

/** How many distinct peers a node has open connections to. */
export function connectedPeers (node: Libp2p): number {
  return new Set(node.getConnections().map(c => c.remotePeer.toString())).size
}

/** The node's addresses as dialable strings, each ending in `/p2p/<its id>`. */
export function dialableAddrs (node: Libp2p): string[] {
  const id = node.peerId.toString()
  return node.getMultiaddrs().map(ma => {
    const text = ma.toString()
    return text.includes('/p2p/') ? text : `${text}/p2p/${id}`
  })
}

/** Stops every node; never throws, so a failing node cannot keep the others running. */
export async function stopAll (nodes: Libp2p[]): Promise<void> {
  await Promise.allSettled(nodes.map(async node => { await node.stop() }))
}
