import type { DiscoveryNode } from './network.js'
import type { AutoDialer } from '../../src/service/dialer.js'

/** A node's auto-dialer, or `undefined` when it runs without one (`autoDial: { enabled: false }`). */
export function dialerOf (node: DiscoveryNode): AutoDialer | undefined {
  return (node.services.discovery as unknown as { dialer?: AutoDialer }).dialer
}

/**
 * For each node, the peers it is connected to through a connection some auto-dialer is
 * responsible for: one it dialed (or adopted), or one a peer's dialer dialed to it.
 */
export function dialedPeers (network: DiscoveryNode[]): Map<string, Set<string>> {
  const peers = new Map(network.map(n => [n.peerId.toString(), new Set<string>()]))
  for (const node of network) {
    for (const connection of dialerOf(node)?.dialedConnections() ?? []) {
      if (connection.status !== 'open') {
        continue
      }
      peers.get(node.peerId.toString())?.add(connection.remotePeer.toString())
      peers.get(connection.remotePeer.toString())?.add(node.peerId.toString())
    }
  }
  return peers
}
