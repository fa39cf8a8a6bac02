import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { DIAL_IP_LIMIT } from '../../../src/constants.js'
import { kadDiscovery } from '../../../src/index.js'
import { toPbPeer } from '../../../src/protocol/convert.js'
import { Message } from '../../../src/protocol/pb/message.js'
import { distanceCompare, keyOf } from '../../../src/table/key.js'
import { seededRandom } from '../../../src/table/random.js'
import { frame } from '../../protocol/utils.js'
import { FAST } from '../../utils/network.js'
import { honestIP, NodeGroup, sleep } from '../utils/nodes.js'
import { Claims, quiet } from '../utils/scenario.js'
import { tableOf, tableViolations } from '../utils/table.js'
import { ProcessWatch, until } from '../utils/watch.js'
import { sendRequest, serveByHand } from '../utils/wire.js'
import type { KadDiscovery, KadDiscoveryInit } from '../../../src/index.js'
import type { AutoDialer } from '../../../src/service/dialer.js'
import type { TestNode } from '../../utils/libp2p.js'
import type { Scenario } from '../utils/scenario.js'
import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** How big an eclipse attempt is. */
export interface EclipseSize {
  /** Honest discovery nodes, each in a /24 of its own. */
  honest: number
  /** Real attacker nodes in each of the two attacker subnets. */
  attackerNodesPerSubnet: number
  /** Attacker identities in all: the real nodes plus made-up ids in the same subnets. */
  identities: number
  /** How long the attackers flood, ms. */
  attackMs: number
  /** Requests each attacker node sends the victim per second (under the per-peer budget). */
  requestsPerSecond: number
  /** Honest nodes the victim looks up after the attack. */
  lookups: number
  /** The victim's per-table and per-bucket IP limits. */
  tableIpLimit: number
  bucketIpLimit: number
}

/** What an eclipse attempt came to. */
export interface EclipseFigures extends Record<string, number | string | boolean> {
  identities: number
  attackerNodes: number
  attackRequestsSent: number
  attackRequestsAnswered: number
  nodesAnswersToVictim: number
  attackerIdsServed: number
  bound: number
  maxAttackerEntries: number
  maxSubnet1: number
  maxSubnet2: number
  attackerConnectionsFromSubnets: number
  attackerConnectionsElsewhere: number
  samples: number
  maxAttackersInRandomRead: number
  randomReadAttackerShare: number
  tableSizeEnd: number
  honestEntriesEnd: number
  connectedPeersAtEnd: number
  connectedAttackersAtEnd: number
  inboundAttackerConnectionsAtEnd: number
  honestConnectedAtEnd: number
  honestDialedAtEnd: number
  dialedAtEnd: number
  dialedAttackersAtEnd: number
  maxDialedAttackers: number
  maxDialedPerSubnet: number
  dialedPerSubnet: string
  dialerDials: number
  dialerAdopted: number
  dialerClaimed: number
  dialerSubnetFull: number
  /** Dials that failed, dialed connections the dialer closed over its target, and times its target shrank under load. */
  dialerFailed: number
  dialerShed: number
  dialerTargetShrunk: number
  /** The dialer's target as the attack ended. */
  dialerTarget: number
  lookupsTried: number
  honestFound: number
  firstMiss: string
  violations: number
  firstViolation: string
  rejections: number
}

const SUBNETS = ['127.0.1', '127.0.2']
const VICTIM_IP = '127.5.0.1'
const ATTACK_SEED = 7

interface Identity {
  id: PeerId
  key: Uint8Array
  pb: Message.Peer
}

type Discovering = TestNode<{ discovery: KadDiscovery }>

/**
 * Eclipse by many identities. Honest nodes each live in a /24 of their own on loopback;
 * the attacker holds `identities` peer ids, all at addresses in 127.0.1.0/24 and
 * 127.0.2.0/24: a few real nodes (listening there and dialing from there, so the victim's
 * connections come from those subnets) and made-up ids with addresses there. The real ones
 * flood the victim with requests (each one proof of life: an inbound add) and answer every
 * FIND_NODE with the attacker ids closest to its target, never an honest one. The victim
 * (`allowLan: false`, so loopback counts) must hold at most `2 × tableIpLimit` attacker
 * entries at every sample and hand out no more through `readRandomNodes`; its auto-dialer
 * must dial at most 2 peers per attacker /24 (4 in all) and keep connections to nearly
 * every honest node while the attackers keep dialing in; and it must still find honest
 * nodes by lookup.
 */
export async function runEclipse (size: EclipseSize, log: (line: string) => void = quiet): Promise<EclipseFigures> {
  const group = new NodeGroup()
  const watch = new ProcessWatch()
  // BOUNDED: the attack's duration; stopped in finally
  const floods: Array<Promise<void>> = []
  const attack = new AbortController()
  try {
    const common: KadDiscoveryInit = { ...FAST, allowLan: false, refreshInterval: 60_000, revalidateInterval: 1000 }
    const boot = await group.create<{ discovery: KadDiscovery }>({ ip: honestIP(0), services: { discovery: kadDiscovery({ ...common, autoDial: { enabled: false } }) } })
    const bootnodes = [boot.getMultiaddrs()[0]!.toString()]
    const honest: Discovering[] = [boot, ...await group.createMany(size.honest - 1, i => ({
      ip: honestIP(i + 1),
      services: { discovery: kadDiscovery({ ...common, bootnodes, autoDial: { enabled: false } }) }
    }))]
    await until(() => honest.every(n => n.services.discovery.size >= Math.min(size.honest - 1, 4)), 30_000)
    log(`honest network of ${honest.length} up`)

    // the attacker: real nodes in both subnets, then made-up ids up to `identities`
    const random = seededRandom(ATTACK_SEED)
    const attackers = await group.createMany(2 * size.attackerNodesPerSubnet, i => ({
      ip: `${SUBNETS[i % 2] as string}.${1 + Math.floor(i / 2)}`
    }))
    // BOUNDED: `identities` entries
    const pool: Identity[] = attackers.map(a => identity(a.peerId, a.getMultiaddrs()[0]!.decapsulateCode(421)))
    while (pool.length < size.identities) {
      const id = peerIdFromPublicKey(publicKeyFromRaw(random.bytes(32)))
      const ip = `${SUBNETS[pool.length % 2] as string}.${50 + random.int(200)}`
      pool.push(identity(id, multiaddr(`/ip4/${ip}/tcp/${20_000 + random.int(40_000)}`)))
    }
    // BOUNDED: `identities` entries
    const attackerIds = new Set(pool.map(p => p.id.toString()))
    let nodesAnswersToVictim = 0
    let attackerIdsServed = 0
    // known once the victim exists; the attackers count what they tell it
    const victimRef: { id?: PeerId } = {}
    for (const attacker of attackers) {
      await serveByHand(attacker, (request, connection) => {
        if (request.type === Message.Type.PING) {
          return frame(Message.encode({ type: Message.Type.PONG, peers: [] }))
        }
        // the attacker ids closest to the target: the strongest lie it can tell
        const target = request.target ?? new Uint8Array(32)
        const peers = [...pool].sort((a, b) => distanceCompare(target, a.key, b.key)).slice(0, 16).map(p => p.pb)
        if (victimRef.id != null && connection.remotePeer.equals(victimRef.id)) {
          nodesAnswersToVictim++
          attackerIdsServed += peers.length
        }
        return frame(Message.encode({ type: Message.Type.NODES, peers }))
      })
    }
    log(`${attackers.length} attacker nodes and ${pool.length} attacker ids ready`)

    const victimInit: KadDiscoveryInit = { ...common, revalidateInterval: FAST.revalidateInterval, bootnodes, tableIpLimit: size.tableIpLimit, bucketIpLimit: size.bucketIpLimit }
    const target = await group.create<{ discovery: KadDiscovery }>({ ip: VICTIM_IP, services: { discovery: kadDiscovery(victimInit) } })
    victimRef.id = target.peerId
    const discovery = target.services.discovery
    const victimAddr = target.getMultiaddrs()[0]!

    // the flood: every real attacker, from its own address, asks the victim (and the honest
    // nodes, so hearsay of the attacker reaches the victim from honest mouths too)
    let sent = 0
    let answered = 0
    for (const [i, attacker] of attackers.entries()) {
      floods.push((async () => {
        let connection: Connection | undefined
        for (let n = 0; !attack.signal.aborted; n++) {
          try {
            if (connection?.status !== 'open') {
              connection = await attacker.dial(victimAddr, { signal: AbortSignal.timeout(5000) })
            }
            sent++
            const request: Message = n % 2 === 0
              ? { type: Message.Type.PING, peers: [] }
              : { type: Message.Type.FIND_NODE, target: new Uint8Array(random.bytes(32)), peers: [] }
            await sendRequest(connection, request, 5000)
            answered++
            if (n % 5 === 0) {
              const other = honest[(i + n) % honest.length] as Discovering
              const c = await attacker.dial(other.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) })
              await sendRequest(c, { type: Message.Type.PING, peers: [] }, 5000)
            }
          } catch {}
          await sleep(1000 / size.requestsPerSecond)
        }
      })())
    }

    // watch the victim's table all through the attack
    const bound = 2 * size.tableIpLimit
    const subnetGroups = SUBNETS.map(s => `ip4/${s.split('.').map(b => Number(b).toString(16)).join('.')}/24`)
    let maxAttackerEntries = 0
    const maxSubnet = [0, 0]
    let samples = 0
    let maxAttackersInRandomRead = 0
    let randomRead = 0
    let randomReadAttackers = 0
    let violations = 0
    let firstViolation = ''
    let attackerConnectionsFromSubnets = 0
    let attackerConnectionsElsewhere = 0
    let maxDialedAttackers = 0
    let maxDialedPerSubnet = 0
    const dialer = (discovery as unknown as { dialer: AutoDialer }).dialer
    // the attack runs from the victim's start; it is timed from the end of its first
    // refresh, when inbound adds begin (geth's initDone)
    let end = Number.POSITIVE_INFINITY
    const bootLimit = Date.now() + 60_000
    while (Date.now() < Math.min(end, bootLimit + size.attackMs)) {
      if (end === Number.POSITIVE_INFINITY && tableOf(discovery).initDone) {
        end = Date.now() + size.attackMs
        log('the victim finished its first refresh')
      }
      await sleep(100)
      samples++
      const entries = discovery.nodes().filter(n => attackerIds.has(n.id.toString())).length
      maxAttackerEntries = Math.max(maxAttackerEntries, entries)
      const counts = new Map(tableOf(discovery).tableIpCounts())
      subnetGroups.forEach((g, i) => { maxSubnet[i] = Math.max(maxSubnet[i] as number, counts.get(g) ?? 0) })
      const read = discovery.readRandomNodes(16)
      const readAttackers = read.filter(n => attackerIds.has(n.id.toString())).length
      maxAttackersInRandomRead = Math.max(maxAttackersInRandomRead, readAttackers)
      randomRead += read.length
      randomReadAttackers += readAttackers
      if (samples % 50 === 0) {
        log(`victim table ${discovery.size}, attacker entries ${entries}, ${sent} requests sent`)
      }
      const dialedAttackers = dialer.dialedConnections().filter(c => attackerIds.has(c.remotePeer.toString())).length
      maxDialedAttackers = Math.max(maxDialedAttackers, dialedAttackers)
      for (const count of dialedPerSubnet(dialer).values()) {
        maxDialedPerSubnet = Math.max(maxDialedPerSubnet, count)
      }
      const problems = tableViolations(discovery, target.peerId, victimInit)
      violations += problems.length
      firstViolation = firstViolation === '' ? problems[0] ?? '' : firstViolation
      // what the victim's IP accounting sees: where its attacker connections come from
      for (const c of target.getConnections()) {
        if (attackerIds.has(c.remotePeer.toString())) {
          const from = c.remoteAddr.toString()
          if (SUBNETS.some(s => from.startsWith(`/ip4/${s}.`))) {
            attackerConnectionsFromSubnets++
          } else {
            attackerConnectionsElsewhere++
          }
        }
      }
    }
    // whom the victim is connected to as the attack ends, the attackers still dialing in:
    // its dialer counts only its own outbound connections, so they cannot crowd it out
    const connectionsAtEnd = target.getConnections()
    const peersAtEnd = new Set(connectionsAtEnd.map(c => c.remotePeer.toString()))
    const connectedAttackers = [...peersAtEnd].filter(id => attackerIds.has(id)).length
    const inboundAttackerConnectionsAtEnd = connectionsAtEnd.filter(c => c.direction === 'inbound' && attackerIds.has(c.remotePeer.toString())).length
    const honestConnectedAtEnd = honest.filter(h => peersAtEnd.has(h.peerId.toString())).length
    const dialedAtEnd = dialer.dialedConnections()
    const dialedAttackersAtEnd = dialedAtEnd.filter(c => attackerIds.has(c.remotePeer.toString())).length
    // the connections the victim's dialer holds to honest nodes: request connections to them
    // come and go with its pings, and would count even when the attackers crowd the dialer out
    const honestDialedAtEnd = honest.filter(h => dialedAtEnd.some(c => c.remotePeer.equals(h.peerId) && c.status === 'open')).length
    const perSubnetAtEnd = [...dialedPerSubnet(dialer).entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    const dialerStats = { ...dialer.stats }
    const dialerTarget = dialer.target
    attack.abort()
    await Promise.all(floods)
    log(`attack over: ${sent} requests sent, ${maxAttackerEntries} attacker entries at most`)

    // honest nodes must still be found, with the attackers still answering every lookup
    const tried = honest.slice(1, 1 + size.lookups)
    const honestIds = new Set(honest.map(h => h.peerId.toString()))
    let honestFound = 0
    let firstMiss = ''
    const clientStats = (d: KadDiscovery): Record<string, number> => ({ ...(d as unknown as { client: { stats: Record<string, number> } }).client.stats })
    const serverStats = (d: KadDiscovery): Record<string, number> => ({ ...(d as unknown as { server: { stats: Record<string, number> } }).server.stats })
    for (const h of tried) {
      const client = clientStats(discovery)
      const server = serverStats(h.services.discovery)
      const found = await discovery.lookup(h.peerId, { signal: AbortSignal.timeout(30_000) }).catch(() => [])
      if (found.some(p => p.id.equals(h.peerId))) {
        honestFound++
      } else if (firstMiss === '') {
        // what the lookup found instead, what the victim's requests and the missed node's
        // server did meanwhile, and whether its nearest honest neighbours knew it
        const key = keyOf(h.peerId)
        const near = honest.filter(n => !n.peerId.equals(h.peerId)).sort((a, b) => distanceCompare(key, keyOf(a.peerId), keyOf(b.peerId))).slice(0, 3)
        firstMiss = `${h.peerId.toString()} (in the table: ${String(discovery.nodes().some(n => n.id.equals(h.peerId)))}; ` +
          `found ${found.filter(p => honestIds.has(p.id.toString())).length} honest, ${found.filter(p => attackerIds.has(p.id.toString())).length} attackers; ` +
          `its 3 nearest honest nodes know it: ${near.map(n => String(n.services.discovery.nodes().some(e => e.id.equals(h.peerId)))).join(' ')}; ` +
          `victim client ${changed(client, clientStats(discovery))}; its server ${changed(server, serverStats(h.services.discovery))})`
      }
    }
    log(`${honestFound} of ${tried.length} honest nodes found by lookup`)
    const figures: EclipseFigures = {
      identities: pool.length,
      attackerNodes: attackers.length,
      attackRequestsSent: sent,
      attackRequestsAnswered: answered,
      nodesAnswersToVictim,
      attackerIdsServed,
      bound,
      maxAttackerEntries,
      maxSubnet1: maxSubnet[0] as number,
      maxSubnet2: maxSubnet[1] as number,
      attackerConnectionsFromSubnets,
      attackerConnectionsElsewhere,
      samples,
      maxAttackersInRandomRead,
      randomReadAttackerShare: round(randomRead === 0 ? 0 : randomReadAttackers / randomRead),
      tableSizeEnd: discovery.size,
      honestEntriesEnd: discovery.nodes().filter(n => honestIds.has(n.id.toString())).length,
      connectedPeersAtEnd: peersAtEnd.size,
      connectedAttackersAtEnd: connectedAttackers,
      inboundAttackerConnectionsAtEnd,
      honestConnectedAtEnd,
      honestDialedAtEnd,
      dialedAtEnd: dialedAtEnd.length,
      dialedAttackersAtEnd,
      maxDialedAttackers,
      maxDialedPerSubnet,
      dialedPerSubnet: perSubnetAtEnd.map(([subnet, n]) => `${subnet}: ${n}`).join(', '),
      dialerDials: dialerStats.dials,
      dialerAdopted: dialerStats.adopted,
      dialerClaimed: dialerStats.claimed,
      dialerSubnetFull: dialerStats.subnetFull,
      dialerFailed: dialerStats.failed,
      dialerShed: dialerStats.shed,
      dialerTargetShrunk: dialerStats.targetShrunk,
      dialerTarget,
      lookupsTried: tried.length,
      honestFound,
      firstMiss,
      violations,
      firstViolation,
      rejections: watch.rejections.length
    }
    return figures
  } finally {
    attack.abort()
    await Promise.allSettled(floods)
    watch.stop()
    await group.stop()
  }
}

/** The victim's dialed peers per /24 of their connection's remote address. */
function dialedPerSubnet (dialer: AutoDialer): Map<string, number> {
  // BOUNDED: one entry per subnet of the dialer's connections (≤ minConnections)
  const counts = new Map<string, number>()
  for (const connection of dialer.dialedConnections()) {
    const ip = connection.remoteAddr.getComponents()[0]?.value ?? 'unknown'
    const subnet = ip.includes('.') ? `${ip.split('.').slice(0, 3).join('.')}.0/24` : ip
    counts.set(subnet, (counts.get(subnet) ?? 0) + 1)
  }
  return counts
}

function identity (id: PeerId, addr: Multiaddr): Identity {
  return { id, key: keyOf(id), pb: toPbPeer(id, [addr]) }
}

/** The counters that moved from `before` to `after`, as `name +n` pairs. */
function changed (before: Record<string, number>, after: Record<string, number>): string {
  return Object.entries(after).filter(([k, v]) => v !== (before[k] ?? 0)).map(([k, v]) => `${k} +${v - (before[k] ?? 0)}`).join(', ')
}

function round (x: number): number {
  return Math.round(x * 1000) / 1000
}

/** The claims of the eclipse scenario. */
export function checkEclipse (f: EclipseFigures, size: EclipseSize): string[] {
  return new Claims()
    .claim('attacker-entries', f.maxAttackerEntries <= f.bound, `the table held ${f.maxAttackerEntries} attacker entries > 2 × tableIpLimit = ${f.bound}`)
    .claim('subnets-seen', f.maxSubnet1 > 0 && f.maxSubnet2 > 0, `the victim's IP accounting never saw both attacker subnets (${f.maxSubnet1}, ${f.maxSubnet2})`)
    .claim('subnet-limit', f.maxSubnet1 <= size.tableIpLimit && f.maxSubnet2 <= size.tableIpLimit, 'a subnet went over tableIpLimit')
    .claim('attacker-source', f.attackerConnectionsFromSubnets > 0 && f.attackerConnectionsElsewhere === 0, `attacker connections came from elsewhere than their subnets (${f.attackerConnectionsElsewhere})`)
    .claim('random-read', f.maxAttackersInRandomRead <= f.bound, `readRandomNodes handed out ${f.maxAttackersInRandomRead} attackers at once > ${f.bound}`)
    .claim('dialed-attackers', f.maxDialedAttackers <= DIAL_IP_LIMIT * SUBNETS.length, `the dialer held ${f.maxDialedAttackers} attackers at once > ${DIAL_IP_LIMIT} per subnet × ${SUBNETS.length}`)
    .claim('dialed-per-subnet', f.maxDialedPerSubnet <= DIAL_IP_LIMIT, `the dialer held ${f.maxDialedPerSubnet} peers of one /24 > ${DIAL_IP_LIMIT}`)
    .claim('honest-connected', f.honestDialedAtEnd >= size.honest - 2, `the victim's dialer held connections to ${f.honestDialedAtEnd} of ${size.honest} honest nodes under attack, < ${size.honest - 2}`)
    .claim('attackers-dialed-in', f.inboundAttackerConnectionsAtEnd > 0, 'no attacker was connected in at the end: the attack did not keep dialing')
    .claim('attack-happened', f.nodesAnswersToVictim > 0, 'the victim never took an attacker NODES answer: no attack happened')
    .claim('honest-found', f.honestFound === f.lookupsTried, `lookups found ${f.honestFound} of ${f.lookupsTried} honest nodes, missed ${f.firstMiss}`)
    .claim('bounds', f.violations === 0, `table bounds broken: ${f.firstViolation}`)
    .claim('rejections', f.rejections === 0, `${f.rejections} unhandled rejections`)
    .failed
}

/** Eclipse by many identities in two /24s. */
export const eclipse: Scenario<EclipseSize, EclipseFigures> = {
  name: 'eclipse',
  title: 'eclipse by many identities in two /24 subnets',
  fast: { honest: 8, attackerNodesPerSubnet: 8, identities: 300, attackMs: 8000, requestsPerSecond: 5, lookups: 3, tableIpLimit: 4, bucketIpLimit: 2 },
  // issue 12's setup: 12 honest peers, 200 real attacker nodes in two /24s, all dialing in
  full: { honest: 12, attackerNodesPerSubnet: 100, identities: 1000, attackMs: 30_000, requestsPerSecond: 2, lookups: 11, tableIpLimit: 10, bucketIpLimit: 2 },
  run: runEclipse,
  check: checkEclipse
}
