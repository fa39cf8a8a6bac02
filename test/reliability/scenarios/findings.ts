import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { kadDiscovery } from '../../../src/index.js'
import { toPbPeer } from '../../../src/protocol/convert.js'
import { Message } from '../../../src/protocol/pb/message.js'
import { distanceCompare, keyOf } from '../../../src/table/key.js'
import { seededRandom } from '../../../src/table/random.js'
import { AddResult } from '../../../src/table/types.js'
import { frame } from '../../protocol/utils.js'
import { FAST } from '../../utils/network.js'
import { honestIP, NodeGroup, sleep } from '../utils/nodes.js'
import { tableOf } from '../utils/table.js'
import { until } from '../utils/watch.js'
import { sendRequest, serveByHand } from '../utils/wire.js'
import type { KadDiscovery, KadDiscoveryInit } from '../../../src/index.js'
import type { ProtocolClient } from '../../../src/protocol/client.js'
import type { Table } from '../../../src/table/table.js'
import type { TestNode } from '../../utils/libp2p.js'
import type { Figures } from '../utils/scenario.js'

/**
 * Bugs in src/ the scenarios found, each as a small deterministic repro that returns its
 * figures and whether the bug showed. Once fixed, a repro is a regression test in
 * `npm test` (findings.spec.ts); while the bug stands it is not (a scenario whose claim it
 * breaks lists it in `knownFailures`), and `npm run scenarios -- --findings` runs it.
 * Each is described in docs/RELIABILITY.md, "Findings".
 */
export interface Finding {
  name: string
  title: string
  /** `fixed`: src/ has the fix and the spec holds it to it; `open`: the bug stands. */
  status: 'fixed' | 'open'
  /** Runs the repro; `bug` is true while the bug stands. */
  run(): Promise<Figures & { bug: boolean }>
}

interface HearsaySetup {
  victim: TestNode<{ discovery: KadDiscovery }>
  honest: TestNode<{ discovery: KadDiscovery }>
  poisoner: TestNode
  table: Table
}

/**
 * A victim, an honest node holding a connection to it (and, with `inTable`, in its table
 * after one valid request), and a poisoner in its table that answers every FIND_NODE with
 * the honest node at 127.0.1.3/tcp/1, nothing else. No revalidation runs meanwhile.
 */
async function hearsaySetup (group: NodeGroup, inTable: boolean): Promise<HearsaySetup> {
  const init: KadDiscoveryInit = { ...FAST, revalidateInterval: 60_000, autoDial: { enabled: false } }
  const victim = await group.create<{ discovery: KadDiscovery }>({ ip: '127.5.0.1', services: { discovery: kadDiscovery(init) } })
  const honest = await group.create<{ discovery: KadDiscovery }>({ ip: honestIP(0), services: { discovery: kadDiscovery(init) } })
  // it knows one node, so its answers are not empty (an empty one counts as a failure)
  tableOf(honest.services.discovery).addFoundNode({ id: peerIdFromPublicKey(publicKeyFromRaw(seededRandom(98).bytes(32))), multiaddrs: [multiaddr('/ip4/127.98.0.1/tcp/1')] })
  const poisoner = await group.create({ ip: '127.0.1.1' })
  await serveByHand(poisoner, (request) => request.type === Message.Type.PING
    ? frame(Message.encode({ type: Message.Type.PONG, peers: [] }))
    : frame(Message.encode({ type: Message.Type.NODES, peers: [toPbPeer(honest.peerId, [BOGUS])] })))
  const table = tableOf(victim.services.discovery)
  await until(() => table.initDone, 20_000)
  // the honest node holds a connection to the victim, as any peer in use does
  const connection = await honest.dial(victim.getMultiaddrs()[0]!)
  if (inTable) {
    await sendRequest(connection, { type: Message.Type.PING, peers: [] })
    await until(() => table.getNode(honest.peerId) != null, 10_000)
  }
  table.addInboundNode({ id: poisoner.peerId, multiaddrs: [poisoner.getMultiaddrs()[0]!.decapsulateCode(421)] })
  return { victim, honest, poisoner, table }
}

/** Where the poisoner says the honest node is. */
const BOGUS = multiaddr('/ip4/127.0.1.3/tcp/1')

/** The honest node's addresses in the victim's table, or '' when it holds none. */
function addressesOf ({ victim, honest }: HearsaySetup): string {
  return victim.services.discovery.nodes().find(n => n.id.equals(honest.peerId))?.multiaddrs.map(String).join(' ') ?? ''
}

/**
 * A lookup re-addresses a live table entry with hearsay. The lookup result takes a node
 * at the addresses of whoever named it first (src/service/iterative-lookup.ts:
 * `result.push(...)` keeps `info.multiaddrs`), asks it, and when it answers,
 * src/service/findnode-lookups.ts passes those same addresses to `onAnswer`, which
 * src/service/discovery.ts turns into `addInboundNode`: a bump that takes them. The request reached the node over a connection that was already open
 * (src/protocol/connections.ts `acquire` reuses any open connection, whatever the
 * addresses), so the answer proves nothing about them. A poisoner that names a live node
 * at its own address, in a lookup whose seeds leave that node out, moves the entry there.
 */
export async function reproAnswerReaddress (): Promise<Figures & { bug: boolean }> {
  const group = new NodeGroup()
  try {
    const setup = await hearsaySetup(group, true)
    const { victim, honest, poisoner, table } = setup
    const before = addressesOf(setup)
    // a target next to the poisoner and far from the honest node, and 15 made-up entries
    // closer to it than the honest node: the lookup's seeds leave the honest node out
    const random = seededRandom(99)
    const target = keyOf(poisoner.peerId).slice()
    target[31] = (target[31] as number) ^ 1
    let added = 0
    for (let i = 0; added < 15 && i < 100_000; i++) {
      const id = peerIdFromPublicKey(publicKeyFromRaw(random.bytes(32)))
      if (distanceCompare(target, keyOf(id), keyOf(honest.peerId)) < 0 && table.addFoundNode({ id, multiaddrs: [multiaddr(`/ip4/127.99.${added}.1/tcp/1`)] }) === AddResult.Added) {
        added++
      }
    }
    await victim.services.discovery.lookup(target)
    const after = addressesOf(setup)
    return { before, after, bug: after.includes('127.0.1.3') }
  } finally {
    await group.stop()
  }
}

/**
 * A node with a smaller `bucketSize` than its peers refuses every full NODES answer:
 * src/protocol/client.ts decodes answers with `maxPeers: this.settings.bucketSize` (its
 * own k), so a default peer's 16 peers are `invalid.too-many-peers`;
 * src/service/findnode-lookups.ts counts each as a failed request, and after `maxFindnodeFailures` src/table/table.ts
 * `dropFailedNode` drops the peer (with `bucketSize` 4 the "keeps ≥ bucketSize / 4"
 * guard is 1 entry). The node's table empties of live peers.
 */
export async function reproSmallBucketSize (): Promise<Figures & { bug: boolean }> {
  const group = new NodeGroup()
  try {
    const init: KadDiscoveryInit = { ...FAST, autoDial: { enabled: false } }
    const boot = await group.create<{ discovery: KadDiscovery }>({ services: { discovery: kadDiscovery(init) } })
    const bootnodes = [boot.getMultiaddrs()[0]!.toString()]
    await group.createMany(20, () => ({ services: { discovery: kadDiscovery({ ...init, bootnodes }) } }))
    await until(() => boot.services.discovery.size >= 16, 30_000)
    const small = await group.create<{ discovery: KadDiscovery }>({ services: { discovery: kadDiscovery({ ...init, bootnodes, bucketSize: 4 }) } })
    await until(() => tableOf(small.services.discovery).initDone, 30_000)
    for (let i = 0; i < 6; i++) {
      await small.services.discovery.lookup(seededRandom(i).bytes(32)).catch(() => [])
    }
    const stats = (small.services.discovery as unknown as { client: { stats: Record<string, number> } }).client.stats
    const tooMany = stats['invalid.too-many-peers'] ?? 0
    return { tooManyPeers: tooMany, answersTaken: stats['received.NODES'] ?? 0, tableSize: small.services.discovery.size, bug: tooMany > 0 }
  } finally {
    await group.stop()
  }
}

/**
 * A node the table does not hold enters at hearsay addresses, and revalidation vouched for
 * them. A NODES answer adds the nodes it names as found entries at the addresses it gives
 * (geth `addFoundNode`; they start unverified), and revalidation is what checks them: geth
 * pings the endpoint it holds. src/service/discovery.ts `doRevalidate` pinged through
 * src/protocol/connections.ts `acquire`, which reuses any open connection whatever the
 * addresses, so an entry whose peer held a connection to us passed at addresses nobody
 * tried, and went out in our NODES answers as live: a poisoner could make a node
 * advertise anyone at an address of the poisoner's choosing. Fixed: revalidation pings
 * with `atAddrs`, over a connection dialed to one of the entry's addresses.
 */
export async function reproAnswerAddsAtHearsay (): Promise<Figures & { bug: boolean }> {
  const group = new NodeGroup()
  try {
    const setup = await hearsaySetup(group, false)
    const { victim, honest, table } = setup
    const inTableBefore = addressesOf(setup) !== ''
    await victim.services.discovery.lookup(keyOf(setup.poisoner.peerId))
    const heard = addressesOf(setup)
    // revalidate until the entry is checked: gone, or live at what it holds
    const revalidate = (victim.services.discovery as unknown as { doRevalidate(): Promise<void> }).doRevalidate.bind(victim.services.discovery)
    let rounds = 0
    for (; rounds < 200; rounds++) {
      const entry = table.getNode(honest.peerId)
      if (entry == null || entry.livenessChecks > 0) {
        break
      }
      await revalidate()
    }
    const entry = table.getNode(honest.peerId)
    const after = addressesOf(setup)
    return { inTableBefore, heard, rounds, after, livenessChecks: entry?.livenessChecks ?? 0, bug: entry != null && entry.livenessChecks > 0 && after.includes('127.0.1.3') }
  } finally {
    await group.stop()
  }
}

/**
 * A request connection kept for reuse gained one `close` listener per request, for as long
 * as it stayed open. src/protocol/connections.ts `reusedWhileIdle` added
 * `entry.connection.addEventListener('close', ...)` each time a released connection waited
 * for reuse, and nothing removed it when the wait ended by reuse or by its deadline; each
 * listener held the wait's closure and deadline. A connection reused every few seconds
 * (a busy node's requests to a popular peer) grew without bound. Fixed: the wait removes
 * its listeners when it ends.
 */
export async function reproReusedConnectionListeners (): Promise<Figures & { bug: boolean }> {
  const group = new NodeGroup()
  try {
    const init: KadDiscoveryInit = { ...FAST, revalidateInterval: 60_000, autoDial: { enabled: false } }
    const [a, b] = await group.createMany<{ discovery: KadDiscovery }>(2, () => ({ services: { discovery: kadDiscovery(init) } }))
    const client = (a!.services.discovery as unknown as { client: ProtocolClient }).client
    const requests = 40
    for (let i = 0; i < requests; i++) {
      await client.ping({ id: b!.peerId, multiaddrs: b!.getMultiaddrs() })
      await sleep(20)
    }
    const connections = a!.getConnections(b!.peerId)
    const listeners = Math.max(0, ...connections.map(c => (c as unknown as { listenerCount(type: string): number }).listenerCount('close')))
    return { requests, connections: connections.length, closeListeners: listeners, bug: listeners > requests / 2 }
  } finally {
    await group.stop()
  }
}

/** Every finding, for the runner and findings.spec.ts. */
export const FINDINGS: Finding[] = [
  { name: 'answer-readdress', title: 'a lookup answer re-addresses a live entry with hearsay', status: 'fixed', run: reproAnswerReaddress },
  { name: 'small-bucket-size', title: 'a node with bucketSize < 16 refuses default NODES answers and drops its peers', status: 'fixed', run: reproSmallBucketSize },
  { name: 'answer-adds-at-hearsay', title: 'revalidation vouches for hearsay addresses when the peer holds a connection to us', status: 'fixed', run: reproAnswerAddsAtHearsay },
  { name: 'reused-connection-listeners', title: 'a reused request connection gains a close listener per request', status: 'fixed', run: reproReusedConnectionListeners }
]
