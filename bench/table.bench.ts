import '../src/polyfill.js'
import { peerIdFromMultihash } from '@libp2p/peer-id'
import { keyOf } from '../src/table/key.js'
import { seededRandom } from '../src/table/random.js'
import { Table } from '../src/table/table.js'
import { fakePeerId, tcpAddr } from '../test/utils/peers.js'
import { peerAtDistance, publicIP } from '../test/utils/table.js'
import { isMain, measure, printTable } from './utils.js'
import type { Timing } from './utils.js'
import type { NodeInfo } from '../src/table/types.js'

// Targets on a 2-core machine (issue 2): closest(target, 16) on a full table < 20 µs, an add < 3 µs.
const TARGETS: Record<string, number> = {
  'addFoundNode (new node, key known)': 3,
  'addInboundNode (bump)': 3,
  'closest(target, 16), full table': 20,
  'closest(target, 16, preferLive), full table': 20
}

/** A table whose 17 buckets all hold 16 nodes, each node in a /24 of its own. */
function fullTable (seed: number): { table: Table, nodes: NodeInfo[] } {
  const random = seededRandom(seed)
  const table = new Table({ self: fakePeerId(random), clock: () => 0, random })
  const nodes: NodeInfo[] = []
  for (let b = 0; b < table.nBuckets; b++) {
    const distance = table.bucketDistances(b)[1]
    for (let i = 0; i < table.bucketSize; i++) {
      const node = { id: peerAtDistance(table.selfKey, distance, random), multiaddrs: [tcpAddr(publicIP(b * 256 + i))] }
      table.addFoundNode(node)
      nodes.push(node)
    }
  }
  return { table, nodes }
}

/** Runs the table micro-benchmark and prints one row per operation. */
export async function run (): Promise<void> {
  const random = seededRandom(1)
  const started = performance.now()
  const { table: full, nodes } = fullTable(2)
  const setupMs = performance.now() - started
  full.setInitDone()

  // fresh nodes for add: a new table every 200 adds keeps most adds on the "enter a bucket"
  // path, as in a table that is filling
  const pool: NodeInfo[] = Array.from({ length: 20000 }, (_, i) => ({ id: fakePeerId(random), multiaddrs: [tcpAddr(publicIP(i))] }))
  for (const node of pool) {
    keyOf(node.id)
  }
  const fresh = pool.slice(0, 5000)
  let addTable = new Table({ self: fakePeerId(random), clock: () => 0, random })
  const targets = Array.from({ length: 1024 }, () => random.bytes(32))

  const timings: Timing[] = [
    measure('addFoundNode (new node, key known)', i => {
      if (i % 200 === 0) {
        addTable = new Table({ self: fakePeerId(random), clock: () => 0, random })
      }
      addTable.addFoundNode(pool[i % pool.length] as NodeInfo)
    }),
    measure('addFoundNode (new node, new PeerId object)', i => {
      if (i % 200 === 0) {
        addTable = new Table({ self: fakePeerId(random), clock: () => 0, random })
      }
      const node = fresh[i % fresh.length] as NodeInfo
      addTable.addFoundNode({ id: peerIdFromMultihash(node.id.toMultihash()), multiaddrs: node.multiaddrs })
    }),
    measure('addInboundNode (bump)', i => {
      full.addInboundNode(nodes[i % nodes.length] as NodeInfo)
    }),
    measure('closest(target, 16), full table', i => {
      full.closest(targets[i & 1023] as Uint8Array, 16)
    }),
    measure('closest(target, 16, preferLive), full table', i => {
      full.closest(targets[i & 1023] as Uint8Array, 16, { preferLive: true })
    }),
    measure('readRandomNodes(16), full table', () => {
      full.readRandomNodes(16)
    }),
    measure('keyOf (sha256 of a new PeerId object)', i => {
      keyOf(peerIdFromMultihash((fresh[i % fresh.length] as NodeInfo).id.toMultihash()))
    })
  ]

  console.log(`full table: ${full.size} nodes in ${full.nBuckets} buckets (built in ${setupMs.toFixed(0)} ms)\n`)
  printTable(['operation', 'ops/s', 'µs/op', 'target µs', 'met'], timings.map(t => {
    const target = TARGETS[t.name]
    return [t.name, Math.round(t.opsPerSecond), t.microsPerOp, target == null ? '' : `< ${target}`, target == null ? '' : t.microsPerOp < target ? 'yes' : 'NO']
  }))
}

if (isMain(import.meta.url)) {
  await run()
}
