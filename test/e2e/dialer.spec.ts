import assert from 'node:assert/strict'
import { DIAL_TAG, DIAL_TAG_VALUE } from '../../src/constants.js'
import { kadDiscovery } from '../../src/index.js'
import { dialedPeers, dialerOf } from '../utils/dialed.js'
import { TestNodes, waitFor } from '../utils/libp2p.js'
import { FAST, startNetwork } from '../utils/network.js'
import type { DiscoveryNode } from '../utils/network.js'

/** A node's open outbound connections to peers it tagged as dialed in its peer store. */
async function taggedOutbound (node: DiscoveryNode): Promise<number> {
  let count = 0
  for (const connection of node.getConnections()) {
    if (connection.direction !== 'outbound' || connection.status !== 'open') {
      continue
    }
    const peer = await node.peerStore.get(connection.remotePeer).catch(() => undefined)
    if (peer?.tags.get(DIAL_TAG)?.value === DIAL_TAG_VALUE) {
      count++
    }
  }
  return count
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** How long the next idle wait of a node's auto-dialer will be, ms: doubled as each wait begins. */
function nextIdleWait (node: DiscoveryNode): number {
  return (dialerOf(node) as unknown as { idleDelay: number }).idleDelay
}

/** Counts the lookups a node's service runs from now on (refreshes, user and random lookups alike). */
function countLookups (node: DiscoveryNode): { count: number } {
  const counter = { count: 0 }
  const lookups = (node.services.discovery as unknown as { lookups: { run(...args: unknown[]): Promise<unknown> } }).lookups
  const original = lookups.run.bind(lookups)
  lookups.run = async (...args: unknown[]) => {
    counter.count++
    return original(...args)
  }
  return counter
}

/** Requests a node's service has sent so far. */
function requestsSent (node: DiscoveryNode): number {
  const stats = (node.services.discovery as unknown as { client: { stats: Record<string, number> } }).client.stats
  return Object.entries(stats).filter(([name]) => name.startsWith('sent.')).reduce((sum, [, n]) => sum + n, 0)
}

describe('the auto-dialer on real libp2p nodes', function () {
  this.timeout(240_000)
  const nodes = new TestNodes()

  afterEach(async () => { await nodes.stop() })

  it('gives every node of 12 its own 3 outbound dialed connections, tagged, unless every peer it knows dialed it first', async () => {
    // pings far apart: with FAST's every 200 ms, request connections join every pair and
    // never go idle, and leave the dialers nobody to dial
    const network = await startNetwork(nodes, 12, { revalidateInterval: 10_000, autoDial: { minConnections: 3 } })
    // the dialer never dials a peer already connected, in either direction: a node that
    // every other node dialed (the bootnode, here) has nobody left to dial. Only dialers'
    // connections count as held: the start-up lookups' request connections join most pairs
    // for a moment and close again, and a node that waited on them would not be settled
    const heldByDialer = (a: DiscoveryNode, b: DiscoveryNode): boolean =>
      (dialerOf(a)?.dialedConnections().some(c => c.status === 'open' && c.remotePeer.equals(b.peerId)) ?? false)
    const held = (node: DiscoveryNode, peer: DiscoveryNode): boolean => heldByDialer(node, peer) || heldByDialer(peer, node)
    const settled = async (node: DiscoveryNode): Promise<boolean> => await taggedOutbound(node) >= 3 ||
      network.every(peer => peer === node || held(node, peer))
    await waitFor(async () => network.every(node => node.services.discovery.size >= 11) && (await Promise.all(network.map(settled))).every(Boolean),
      () => 'every table to fill, and every node to hold 3 tagged outbound connections or a dialer\'s connection to every peer ' +
        `(dialed/held per node: ${network.map(node => `${dialerOf(node)?.outbound ?? 0}/${network.filter(peer => peer !== node && held(node, peer)).length}`).join(' ')})`, 90_000)
    // the nodes short of 3 are held by others' dialers to every peer (nobody dials the
    // bootnode, and the first nodes to join are dialed by most of the others); most
    // dialers met their whole target themselves
    const dialed = await Promise.all(network.map(taggedOutbound))
    assert.ok(dialed.filter(n => n >= 3).length >= network.length * 3 / 4, `dialed connections per node: ${dialed.join(' ')}`)
    for (const node of network) {
      const dialer = dialerOf(node)
      assert.ok(dialer != null)
      assert.ok(dialer.outbound <= 3 + 4, `${dialer.outbound} dialed`)
      // it dialed each peer once (a peer that dials us at the very moment we dial it can
      // still leave a second connection: libp2p has no tie-break for crossed dials)
      const peers = dialer.dialedConnections().map(c => c.remotePeer.toString())
      assert.equal(new Set(peers).size, peers.length)
      assert.ok(dialer.dialedConnections().every(c => c.direction === 'outbound'))
    }
  })

  it('leaves the bootnode alone once the network outgrows the target: no dialer keeps it', async () => {
    // every node's first requests go to the bootnode; a dialer that kept those connections
    // (as it keeps other request connections while below its target) would make the
    // bootnode a hub holding a connection from every node that joined through it
    // pings far apart, so that request connections close and leave every node peers to dial
    const network = await startNetwork(nodes, 12, { revalidateInterval: 10_000, autoDial: { minConnections: 3 } })
    const [boot, ...rest] = network
    // unless it is connected to every other peer already (they all dialed it first, or its
    // requests hold them): then nobody else is left to dial, and it needs the bootnode
    const holdsBootnode = (node: DiscoveryNode): boolean =>
      (dialerOf(node)?.dialedConnections().some(c => c.status === 'open' && c.remotePeer.equals(boot!.peerId)) ?? false) &&
      rest.some(peer => peer !== node && node.getConnections(peer.peerId).length === 0)
    await waitFor(() => rest.every(node => (dialerOf(node)?.outbound ?? 0) >= 3) && !rest.some(holdsBootnode),
      () => `every node to dial 3 peers, none of them the bootnode: ${rest.map(n => `${dialerOf(n)?.outbound ?? 0}${holdsBootnode(n) ? '+boot' : ''}`).join(' ')}` +
        rest.filter(holdsBootnode).map(n => ` ${JSON.stringify(dialerOf(n)?.stats)} table ${n.services.discovery.size} unconnected ${rest.filter(p => p !== n && n.getConnections(p.peerId).length === 0).length}`).join(''), 60_000)
  })

  it('lets a second wave join through a bootnode whose connection slots the first wave filled', async () => {
    // libp2p refuses inbound connections once a node holds maxConnections (300 by
    // default): dialers that kept their request connections to the bootnode would fill
    // it, and every later node would find it closed for good
    const maxConnections = 8
    const init = { ...FAST, revalidateInterval: 10_000, autoDial: { minConnections: 2, dialHistoryExpiration: 1000 } }
    const boot: DiscoveryNode = await nodes.create({ connectionManager: { maxConnections }, services: { discovery: kadDiscovery(init) } })
    const bootnodes = [boot.getMultiaddrs()[0]!.toString()]
    const join = async (count: number): Promise<DiscoveryNode[]> => nodes.createMany(count, { services: { discovery: kadDiscovery({ ...init, bootnodes }) } })
    const first = await join(maxConnections)
    await waitFor(() => first.every(node => node.services.discovery.size >= maxConnections && (dialerOf(node)?.outbound ?? 0) >= 2),
      () => `the first wave to know each other and dial 2 peers each: ${first.map(n => `${n.services.discovery.size}/${dialerOf(n)?.outbound ?? 0}`).join(' ')}`, 60_000)
    // its slots are free again once the first wave's dialers met their targets elsewhere
    await waitFor(() => boot.getConnections().length <= maxConnections / 2,
      () => `the first wave's dialers to let go of the bootnode: it holds ${boot.getConnections().length} connections`, 30_000)
    const second = await join(maxConnections)
    await waitFor(() => second.every(node => node.services.discovery.size >= maxConnections),
      () => `every node of the second wave to join (tables ${second.map(n => n.services.discovery.size).join(' ')}); the bootnode holds ${boot.getConnections().length} connections`, 60_000)
  })

  it('does not: the same network with the dialer disabled holds no dialed connection', async () => {
    const network = await startNetwork(nodes, 12, { autoDial: { enabled: false } })
    await waitFor(() => network.every(n => n.services.discovery.size >= 11), 'every table to fill', 90_000)
    // as long as the positive test may take to get there, at least a while
    await sleep(5000)
    assert.deepEqual(await Promise.all(network.map(taggedOutbound)), network.map(() => 0))
    assert.ok([...dialedPeers(network).values()].every(peers => peers.size === 0))
  })

  it('goes quiet in a settled network smaller than its target: few requests, one connection per pair', async () => {
    // 6 nodes with the defaults: the target of 16 can never be met, every candidate is
    // connected already, and the dialer must stop driving random lookups
    const defaults = { revalidateInterval: 10_000, copyNodesInterval: 30_000, requestTimeout: 5000 }
    const network = await startNetwork(nodes, 6, defaults)
    // every pair connected, by a dialer or by requests: nobody is left to dial
    await waitFor(() => network.every(node => network.every(peer => peer === node || node.getConnections(peer.peerId).length > 0)), 'every pair connected', 60_000)
    // settled: every dialer has begun an idle wait of 32 s (after 1 + 2 + … + 16 s of waits
    // that found nothing), so the minute below holds at most one pull past the table. Waited
    // for, not slept: the waits start over whenever a node enters a table
    await waitFor(() => network.every(node => nextIdleWait(node) >= 64_000), 'every dialer to wait 32 s between pulls', 90_000)
    const counters = network.map(countLookups)
    const before = network.map(requestsSent)
    await sleep(60_000)
    const lookups = counters.map(c => c.count)
    const perMinute = network.map((node, i) => requestsSent(node) - (before[i] ?? 0))
    // without the idle backoff a random lookup a second (≈ 60 in this window) on every node
    assert.ok(lookups.every(n => n <= 1), `lookups per node in a minute: ${lookups.join(' ')}`)
    // revalidation's pings (one every 5 s on average) and at most one small lookup
    const mean = perMinute.reduce((a, b) => a + b, 0) / perMinute.length
    assert.ok(mean <= 20, `requests per node per minute: ${perMinute.join(' ')}`)
    assert.ok(perMinute.every(n => n <= 25), `requests per node per minute: ${perMinute.join(' ')}`)
    const duplicates = network.flatMap(node => network.filter(peer => peer !== node && node.getConnections(peer.peerId).length > 1))
    assert.deepEqual(duplicates.map(p => p.peerId.toString()), [], 'one connection per pair of nodes')
  })

  it('dials its way back after every peer restarted', async () => {
    // only this node dials, and its peers' own requests (a refresh when they start, then
    // nothing for 10 min) leave it no connection to keep: its dials bring the network back
    const peers = await startNetwork(nodes, 4, { autoDial: { enabled: false }, revalidateInterval: 600_000, refreshInterval: 600_000 })
    const node: DiscoveryNode = await nodes.create({
      services: { discovery: kadDiscovery({ ...FAST, bootnodes: [peers[0]!.getMultiaddrs()[0]!], autoDial: { minConnections: 4, dialHistoryExpiration: 1000 } }) }
    })
    const dialer = dialerOf(node)!
    await waitFor(() => dialer.outbound === 4, 'the node to dial every peer', 60_000)
    await Promise.all(peers.map(async p => { await p.stop() }))
    await waitFor(() => node.getConnections().length === 0, 'every connection lost', 10_000)
    assert.equal(dialer.outbound, 0)
    assert.ok(dialer.stats.recoveries >= 1)
    // the first redials fail while the peers are down
    await sleep(3000)
    await Promise.all(peers.map(async p => { await p.start() }))
    await waitFor(() => dialer.outbound >= 3, 'the node to dial its peers again', 60_000)
  })
})
