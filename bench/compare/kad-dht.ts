import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { createBenchNode, listenAddress } from './nodes.js'
import { spread, withMessagesSent } from './scenario.js'
import type { SystemNode, System } from './runner.js'
import type { KadDHT, SingleKadDHT } from '@libp2p/kad-dht'

/** `@libp2p/bootstrap`'s tag on its peers (name, value and TTL of its defaults). */
const BOOTSTRAP_TAG = { name: 'bootstrap', value: 50, ttl: 120_000 }

interface DhtNode extends SystemNode {
  dht: SingleKadDHT
  bootstrap: { ok: number, failed: number, done: Promise<void> }
}

/**
 * `@libp2p/kad-dht` in server mode: `kadDHT({ clientMode: false, peerInfoMapper:
 * passthroughMapper })`, every other setting at its default (k = 20, alpha = 10,
 * disjoint paths = alpha, protocol `/ipfs/kad/1.0.0`). Its default mapper
 * (`removePrivateAddressesMapper`) would drop memory-transport addresses.
 *
 * Bootnodes: `@libp2p/bootstrap` is not installed, so each node does what it does by
 * hand, right after start (bootstrap waits 1 s): merge the 3 bootnodes (but itself) into
 * the peer store with bootstrap's tag (`bootstrap`, value 50, TTL 2 min) and dial them.
 * kad-dht then adds them to its routing table on identify and runs its self-query.
 *
 * Messages per lookup: the `DIAL_PEER` events of `getClosestPeers` (a FIND_NODE request
 * started, as we count ours); `SEND_QUERY` (stream opened, request written) and
 * `PEER_RESPONSE` counts are kept in each lookup's detail.
 */
export function kadDht (): System {
  return {
    name: 'kad-dht',
    async create (identity, size, bootnodes, observe): Promise<DhtNode> {
      const libp2p = await createBenchNode<{ dht: KadDHT }>(identity, listenAddress('kad-dht', size, identity.index), {
        // the ping service the DHT needs is in every bench node (createBenchNode)
        dht: kadDHT({ clientMode: false, peerInfoMapper: passthroughMapper }) as unknown as (components: unknown) => KadDHT
      }, observe)
      const dht = libp2p.services.dht as SingleKadDHT
      const bootstrap = { ok: 0, failed: 0, done: Promise.resolve() }
      bootstrap.done = Promise.all(bootnodes.map(async address => {
        try {
          const ma = multiaddr(address)
          const peer = peerIdFromString(ma.getComponents().find(c => c.name === 'p2p')?.value ?? '')
          await libp2p.peerStore.merge(peer, {
            multiaddrs: [ma.decapsulateCode(421)],
            tags: { [BOOTSTRAP_TAG.name]: { value: BOOTSTRAP_TAG.value, ttl: BOOTSTRAP_TAG.ttl } }
          })
          await libp2p.dial(peer)
          bootstrap.ok++
        } catch {
          bootstrap.failed++
        }
      })).then(() => {})
      return {
        libp2p,
        dht,
        bootstrap,
        tableSize: () => dht.routingTable.size,
        lookup: async (plan, signal) => {
          const found: string[] = []
          const detail = { sendQuery: 0, peerResponse: 0, queryError: 0, pathEnded: 0 }
          let messages = 0
          try {
            for await (const event of dht.getClosestPeers(plan.preimage, { signal })) {
              switch (event.name) {
                case 'DIAL_PEER': messages++; break
                case 'SEND_QUERY': detail.sendQuery++; break
                case 'PEER_RESPONSE': detail.peerResponse++; break
                case 'QUERY_ERROR': detail.queryError++; break
                case 'PATH_ENDED': detail.pathEnded++; break
                case 'FINAL_PEER': found.push(event.peer.id.toString()); break
                default: break
              }
            }
          } catch (err) {
            throw withMessagesSent(err, messages)
          }
          return { found, messages, detail }
        }
      }
    },
    summary (nodes) {
      const dhtNodes = nodes as DhtNode[]
      return {
        routingTableSizes: spread(dhtNodes.map(n => n.dht.routingTable.size)),
        bootstrapDials: {
          ok: dhtNodes.reduce((sum, n) => sum + n.bootstrap.ok, 0),
          failed: dhtNodes.reduce((sum, n) => sum + n.bootstrap.failed, 0),
          nodesWithNoBootnode: dhtNodes.filter(n => n.bootstrap.ok === 0).length
        },
        bootnodes: dhtNodes.slice(0, 3).map(n => ({
          connections: n.libp2p.getConnections().length,
          tableSize: n.dht.routingTable.size
        }))
      }
    }
  }
}
