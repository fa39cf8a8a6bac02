import { equals } from 'uint8arrays/equals'
import { kadDiscovery } from '../../src/index.js'
import { createBenchNode, listenAddress } from './nodes.js'
import { addCounters, spread, withMessagesSent } from './scenario.js'
import type { SystemNode, System } from './runner.js'
import type { KadDiscovery } from '../../src/index.js'
import type { AbortOptions, PeerId, PeerInfo } from '@libp2p/interface'

/**
 * What the benchmark reads of the service's private parts (never written, but for the
 * `findNode` wrapper below): counters, for the report. All optional, so a rename in
 * src/ shows as missing figures, not a crash.
 */
interface Internals {
  client?: {
    stats?: Record<string, number>
    requestConnections?: number
    findNode(peer: PeerInfo | PeerId, target: Uint8Array, options?: AbortOptions): Promise<PeerInfo[]>
  }
  server?: { stats?: Record<string, number> }
  dialer?: { stats?: Record<string, number> }
}

interface OurNode extends SystemNode {
  service: KadDiscovery
}

/**
 * This module as a user gets it: `kadDiscovery({ bootnodes })` with every other setting at
 * its default (auto-dial on, minConnections 16, geth's constants).
 *
 * Messages per lookup: the FIND_NODE requests the source node starts with the lookup's
 * target, counted by wrapping the service's `client.findNode` on that node (a request
 * to a peer that cannot be dialed counts too). Counting by target leaves out the
 * requests of refreshes and of the auto-dialer's random lookups that may run meanwhile.
 */
export function ours (): System {
  return {
    name: 'ours',
    async create (identity, size, bootnodes, observe): Promise<OurNode> {
      const libp2p = await createBenchNode<{ discovery: KadDiscovery }>(identity, listenAddress('ours', size, identity.index), {
        discovery: kadDiscovery({ bootnodes })
      }, observe)
      const service = libp2p.services.discovery
      const watch: { key?: Uint8Array, count: number } = { count: 0 }
      const client = (service as unknown as Internals).client
      if (client != null) {
        const findNode = client.findNode.bind(client)
        client.findNode = async (peer, target, options) => {
          if (watch.key != null && equals(target, watch.key)) {
            watch.count++
          }
          return findNode(peer, target, options)
        }
      }
      return {
        libp2p,
        service,
        tableSize: () => service.size,
        lookup: async (plan, signal) => {
          const stats = client?.stats ?? {}
          const before = { ...stats }
          watch.key = plan.key
          watch.count = 0
          try {
            const found = await service.lookup(plan.key, { signal }).catch(err => { throw withMessagesSent(err, watch.count) })
            const delta = (name: string): number => (stats[name] ?? 0) - (before[name] ?? 0)
            return {
              found: found.map(p => p.id.toString()),
              messages: watch.count,
              detail: {
                // every FIND_NODE the node sent meanwhile, the lookup's and any other's
                sentFindNodeAll: delta('sent.FIND_NODE'),
                receivedNodesAll: delta('received.NODES'),
                timeouts: delta('timeout'),
                dialErrors: delta('dialError'),
                resets: delta('reset'),
                retries: delta('retry')
              }
            }
          } finally {
            watch.key = undefined
          }
        }
      }
    },
    summary (nodes) {
      const client: Record<string, number> = {}
      const server: Record<string, number> = {}
      const dialer: Record<string, number> = {}
      const requestConnections: number[] = []
      for (const node of nodes as OurNode[]) {
        const internals = node.service as unknown as Internals
        addCounters(client, internals.client?.stats)
        addCounters(server, internals.server?.stats)
        addCounters(dialer, internals.dialer?.stats as Record<string, number> | undefined)
        requestConnections.push(internals.client?.requestConnections ?? 0)
      }
      const bootnodes = (nodes as OurNode[]).slice(0, 3).map(node => {
        const internals = node.service as unknown as Internals
        return {
          connections: node.libp2p.getConnections().length,
          tableSize: node.service.size,
          server: { ...internals.server?.stats },
          client: { ...internals.client?.stats }
        }
      })
      return {
        client,
        server,
        dialer,
        requestConnectionsPerNode: spread(requestConnections),
        bootnodes
      }
    },
    traffic (nodes) {
      // requests: every `sent.<type>` of the client (PING and FIND_NODE); connections: the
      // client's own `connectionsOpened` (the auto-dialer's dials are libp2p's, counted by
      // the runner's `connection:open` tally)
      let requests = 0
      let connectionsOpened = 0
      // the service's only PINGs are revalidation's: the connections they had to dial
      let revalidationDials = 0
      for (const node of nodes as OurNode[]) {
        const stats = (node.service as unknown as Internals).client?.stats ?? {}
        for (const [name, value] of Object.entries(stats)) {
          if (name.startsWith('sent.')) {
            requests += value
          }
        }
        connectionsOpened += stats.connectionsOpened ?? 0
        revalidationDials += stats['dialed.PING'] ?? 0
      }
      return { requests, connectionsOpened, revalidationDials }
    }
  }
}
