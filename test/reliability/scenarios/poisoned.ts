import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { kadDiscovery } from '../../../src/index.js'
import { toPbPeer } from '../../../src/protocol/convert.js'
import { Message } from '../../../src/protocol/pb/message.js'
import { checkRelayIP, ipOf } from '../../../src/protocol/relay.js'
import { keyAtDistance, keyOf, logDistance } from '../../../src/table/key.js'
import { seededRandom } from '../../../src/table/random.js'
import { frame } from '../../protocol/utils.js'
import { FAST } from '../../utils/network.js'
import { honestIP, NodeGroup, sleep } from '../utils/nodes.js'
import { Claims, quiet } from '../utils/scenario.js'
import { tableViolations } from '../utils/table.js'
import { ProcessWatch, until } from '../utils/watch.js'
import { sendRequest, serveByHand } from '../utils/wire.js'
import type { KadDiscovery, KadDiscoveryInit } from '../../../src/index.js'
import type { RandomSource } from '../../../src/table/types.js'
import type { TestNode } from '../../utils/libp2p.js'
import type { Scenario } from '../utils/scenario.js'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** How long the poisoning goes on. */
export interface PoisonedSize {
  /** Honest discovery nodes, each in a /24 of its own. */
  honest: number
  /** Lookups the victim runs while the poisoner answers. */
  lookups: number
}

/** What the poisoning came to. */
export interface PoisonedFigures extends Record<string, number | string | boolean> {
  lookups: number
  poisonedAnswers: number
  invalidFrames: number
  entriesOffered: number
  samples: number
  honestTracked: number
  /** Entries (of any node) seen at one address and at the next sample at another. */
  readdressed: number
  honestPushedOut: number
  /** Honest ids that left and came back at a poisoned address: new entries, reported. */
  poisonedNewEntries: number
  selfInTable: number
  /** Samples of entries other than the poisoner at its address (new entries only, reported). */
  hijackedEntries: number
  invalidAddrEntries: number
  fabricatedEntriesMax: number
  /** The most replacements the victim's buckets kept at once: the pressure on live entries. */
  replacementsMax: number
  violations: number
  firstProblem: string
  honestFoundAfter: number
  honestTriedAfter: number
  rejections: number
}

/** The lies the poisoner tells, one kind per answer, in turn. */
const KINDS = ['far', 'duplicates', 'itself', 'requester', 'invalid-addresses', 'hijack', 'mixed', 'undecodable-address'] as const
type Kind = typeof KINDS[number]

const POISONER_IP = '127.0.1.1'
const VICTIM_IP = '127.5.0.1'
// addresses no one may relay: unspecified, broadcast, multicast, documentation, benchmarking
const INVALID_ADDRS = ['/ip4/0.0.0.0/tcp/4001', '/ip4/255.255.255.255/tcp/4001', '/ip4/224.0.0.1/tcp/4001',
  '/ip4/192.0.2.1/tcp/4001', '/ip4/198.18.0.1/tcp/4001', '/ip6/::/tcp/4001', '/ip6/ff02::1/tcp/4001'].map(a => multiaddr(a))

type Discovering = TestNode<{ discovery: KadDiscovery }>

/**
 * Poisoned answers. A victim learns an honest network and a poisoner, which answers every FIND_NODE with lies of one
 * kind in turn: far-away nodes (each in a /24 of its own, so they fill the far buckets and
 * their replacement lists), duplicates, itself at other addresses, the requester,
 * invalid addresses, honest nodes' ids at the poisoner's addresses, all of them mixed, and
 * an address that does not decode. It also keeps itself live with valid requests. While
 * the victim runs lookups through it, every honest entry must keep its address and its
 * place, and nothing invalid may enter.
 */
export async function runPoisoned (size: PoisonedSize, log: (line: string) => void = quiet): Promise<PoisonedFigures> {
  const group = new NodeGroup()
  const watch = new ProcessWatch()
  const poisoning = new AbortController()
  let keepAlive: Promise<void> | undefined
  try {
    const random = seededRandom(11)
    const common: KadDiscoveryInit = { ...FAST, allowLan: false, refreshInterval: 60_000, revalidateInterval: 1000, autoDial: { enabled: false } }
    const honest: Discovering[] = []
    honest.push(await group.create({ ip: honestIP(0), services: { discovery: kadDiscovery(common) } }))
    const bootnode = honest[0]!.getMultiaddrs()[0]!.toString()
    honest.push(...await group.createMany(size.honest - 1, i => ({
      ip: honestIP(i + 1),
      services: { discovery: kadDiscovery({ ...common, bootnodes: [bootnode] }) }
    })))
    await until(() => honest.every(n => n.services.discovery.size >= Math.min(size.honest - 1, 4)), 30_000)

    const poisoner = await group.create({ ip: POISONER_IP })
    const poisonerAddr = poisoner.getMultiaddrs()[0]!
    const victimInit: KadDiscoveryInit = {
      ...FAST,
      requestTimeout: 5000,
      allowLan: false,
      refreshInterval: 60_000,
      autoDial: { enabled: false },
      bootnodes: [bootnode, poisonerAddr.toString()]
    }
    const victim = await group.create<{ discovery: KadDiscovery }>({ ip: VICTIM_IP, services: { discovery: kadDiscovery(victimInit) } })
    const discovery = victim.services.discovery
    // the true addresses: what every honest entry must keep
    const truth = new Map(honest.map(h => [h.peerId.toString(), h.getMultiaddrs()[0]!.decapsulateCode(421).toString()]))
    const poisonerTruth = poisonerAddr.decapsulateCode(421).toString()

    let poisonedAnswers = 0
    let invalidFrames = 0
    let entriesOffered = 0
    let turn = 0
    let lying = false
    // BOUNDED: one id per made-up node the poisoner names (≤ 16 per answer, `lookups` × a few answers)
    const fabricated = new Set<string>()
    await serveByHand(poisoner, (request) => {
      if (request.type === Message.Type.PING) {
        return frame(Message.encode({ type: Message.Type.PONG, peers: [] }))
      }
      if (!lying) {
        // honest until the victim knows everyone: every entry is then an existing one
        return frame(Message.encode({ type: Message.Type.NODES, peers: honest.map(h => toPbPeer(h.peerId, [h.getMultiaddrs()[0]!.decapsulateCode(421)])) }))
      }
      const kind = KINDS[turn++ % KINDS.length] as Kind
      const answer = lie(kind, request.target ?? new Uint8Array(32), { random, victim: victim.peerId, poisoner: poisoner.peerId, poisonerAddr: poisonerAddr.decapsulateCode(421), honest: honest.map(h => h.peerId), fabricated })
      poisonedAnswers++
      entriesOffered += answer.peers
      invalidFrames += kind === 'undecodable-address' ? 1 : 0
      return answer.bytes
    })
    // the poisoner proves itself alive, so it stays in the table and gets asked
    keepAlive = (async () => {
      while (!poisoning.signal.aborted) {
        try {
          const connection = await poisoner.dial(victim.getMultiaddrs()[0]!, { signal: AbortSignal.timeout(5000) })
          await sendRequest(connection, { type: Message.Type.PING, peers: [] })
        } catch {}
        await sleep(300)
      }
    })()
    const everyone = [...truth.keys(), poisoner.peerId.toString()]
    await until(() => {
      const ids = new Set(discovery.nodes().map(n => n.id.toString()))
      return everyone.every(id => ids.has(id))
    }, 30_000)
    log(`victim knows the poisoner and the honest nodes; table ${discovery.size}`)

    // watch every entry while the victim looks up through the poisoner
    // BOUNDED: one table's entries: each entry's addresses at the last sample
    let last = new Map<string, string>()
    let samples = 0
    let readdressed = 0
    let honestPushedOut = 0
    let poisonedNewEntries = 0
    let selfInTable = 0
    let hijackedEntries = 0
    let invalidAddrEntries = 0
    let fabricatedEntriesMax = 0
    let replacementsMax = 0
    let violations = 0
    let firstProblem = ''
    const problem = (what: string): void => { firstProblem = firstProblem === '' ? what : firstProblem }
    const sample = (): void => {
      samples++
      // BOUNDED: one table's entries
      const now = new Map<string, string>()
      let fabricatedEntries = 0
      for (const node of discovery.nodes()) {
        const id = node.id.toString()
        // a bootnode entry keeps its /p2p suffix: compare transport addresses
        const addrs = node.multiaddrs.map(ma => ma.decapsulateCode(421).toString()).sort().join(' ')
        now.set(id, addrs)
        const before = last.get(id)
        if (before != null && before !== addrs) {
          readdressed++
          problem(`${id} re-addressed from ${before} to ${addrs}`)
        }
        if (before == null && truth.has(id) && addrs !== truth.get(id)) {
          // an honest id heard of first from the poisoner: a new entry, never a live one's
          poisonedNewEntries++
        }
        if (node.id.equals(victim.peerId)) {
          selfInTable++
          problem('the victim holds itself')
        }
        if (fabricated.has(id)) {
          fabricatedEntries++
        }
        if (!node.id.equals(poisoner.peerId) && addrs.split(' ').includes(poisonerTruth)) {
          hijackedEntries++
        }
        if (node.multiaddrs.some(ma => invalid(ma))) {
          invalidAddrEntries++
          problem(`${id} at ${addrs}`)
        }
      }
      for (const id of last.keys()) {
        if (truth.has(id) && !now.has(id)) {
          honestPushedOut++
          problem(`${id} left the table`)
        }
      }
      last = now
      fabricatedEntriesMax = Math.max(fabricatedEntriesMax, fabricatedEntries)
      replacementsMax = Math.max(replacementsMax, discovery.buckets().reduce((n, b) => n + b.replacements.length, 0))
      const broken = tableViolations(discovery, victim.peerId, victimInit)
      violations += broken.length
      broken.forEach(problem)
    }
    sample()
    lying = true
    const sampler = setInterval(sample, 50)
    try {
      for (let i = 0; i < size.lookups; i++) {
        // half the lookups aim next to the poisoner, so it is asked every time
        const target = i % 2 === 0
          ? keyAtDistance(keyOf(poisoner.peerId), 250, random.bytes(32))
          : i % 4 === 1 ? keyOf(honest[i % honest.length]!.peerId) : random.bytes(32)
        await discovery.lookup(target, { signal: AbortSignal.timeout(30_000) }).catch(() => {})
        if (i % 10 === 9) {
          log(`${i + 1} lookups, ${poisonedAnswers} poisoned answers, table ${discovery.size}`)
        }
      }
    } finally {
      clearInterval(sampler)
    }
    sample()
    poisoning.abort()
    await keepAlive

    // honest nodes are still found, at their true addresses
    let honestFoundAfter = 0
    for (const h of honest.slice(1)) {
      const found = await discovery.lookup(h.peerId, { signal: AbortSignal.timeout(30_000) }).catch(() => [])
      const entry = found.find(p => p.id.equals(h.peerId))
      if (entry?.multiaddrs.some(ma => ma.decapsulateCode(421).toString() === truth.get(h.peerId.toString())) === true) {
        honestFoundAfter++
      }
    }
    return {
      lookups: size.lookups,
      poisonedAnswers,
      invalidFrames,
      entriesOffered,
      samples,
      honestTracked: truth.size,
      readdressed,
      honestPushedOut,
      poisonedNewEntries,
      selfInTable,
      hijackedEntries,
      invalidAddrEntries,
      fabricatedEntriesMax,
      replacementsMax,
      violations,
      firstProblem,
      honestFoundAfter,
      honestTriedAfter: honest.length - 1,
      rejections: watch.rejections.length
    }
  } finally {
    poisoning.abort()
    await keepAlive
    watch.stop()
    await group.stop()
  }
}

interface LieContext {
  random: RandomSource
  victim: PeerId
  poisoner: PeerId
  poisonerAddr: Multiaddr
  honest: PeerId[]
  fabricated: Set<string>
}

/** A NODES frame telling one kind of lie about `target`, and how many peers it names. */
function lie (kind: Kind, target: Uint8Array, ctx: LieContext): { bytes: Uint8Array, peers: number } {
  const { random } = ctx
  const poisonerIP = ipOf(ctx.poisonerAddr)?.join('.') ?? POISONER_IP
  // in the poisoner's /24, or (for made-up nodes, so the IP limits let them fill buckets)
  // each in a /24 of its own
  const nearby = (n: number): Multiaddr => multiaddr(`/ip4/${poisonerIP.split('.').slice(0, 3).join('.')}.${2 + (n % 250)}/tcp/${20_000 + random.int(40_000)}`)
  const elsewhere = (): Multiaddr => multiaddr(`/ip4/127.${100 + random.int(100)}.${random.int(256)}.${1 + random.int(254)}/tcp/${20_000 + random.int(40_000)}`)
  const made = (): PeerId => {
    const id = peerIdFromPublicKey(publicKeyFromRaw(random.bytes(32)))
    ctx.fabricated.add(id.toString())
    return id
  }
  // a made-up node as far from the target as a key can be
  const far = (): PeerId => {
    for (;;) {
      const id = made()
      if (logDistance(keyOf(id), target) === 256) {
        return id
      }
    }
  }
  let peers: Message.Peer[]
  switch (kind) {
    case 'far':
      peers = Array.from({ length: 16 }, () => toPbPeer(far(), [elsewhere()]))
      break
    case 'duplicates': {
      const twice = made()
      const honest = ctx.honest[random.int(ctx.honest.length)] as PeerId
      peers = Array.from({ length: 16 }, (_, i) => toPbPeer(i % 2 === 0 ? twice : honest, [nearby(i)]))
      break
    }
    case 'itself':
      peers = Array.from({ length: 4 }, (_, i) => toPbPeer(ctx.poisoner, [nearby(i)]))
      break
    case 'requester':
      peers = [toPbPeer(ctx.victim, [ctx.poisonerAddr]), toPbPeer(ctx.victim, [nearby(1)])]
      break
    case 'invalid-addresses':
      peers = INVALID_ADDRS.map(addr => toPbPeer(made(), [addr]))
      break
    case 'hijack':
      peers = ctx.honest.slice(0, 16).map((id, i) => toPbPeer(id, [i % 2 === 0 ? ctx.poisonerAddr : nearby(i)]))
      break
    case 'mixed':
      peers = [toPbPeer(ctx.poisoner, [nearby(3)]), toPbPeer(ctx.victim, [nearby(4)]),
        toPbPeer(ctx.honest[0] as PeerId, [ctx.poisonerAddr]), toPbPeer(made(), INVALID_ADDRS.slice(0, 3)),
        toPbPeer(far(), [elsewhere(), INVALID_ADDRS[0] as Multiaddr])]
      break
    case 'undecodable-address':
      peers = [toPbPeer(far(), [elsewhere()]), { id: made().toMultihash().bytes, addrs: [Uint8Array.of(0x04, 0x7f)] }]
      break
  }
  return { bytes: frame(Message.encode({ type: Message.Type.NODES, peers })), peers: peers.length }
}

/** Whether no node at a loopback address may be pointed at `ma` (geth `CheckRelayIP`). */
function invalid (ma: Multiaddr): boolean {
  const ip = ipOf(ma)
  return ip != null && checkRelayIP(Uint8Array.of(127, 0, 0, 1), ip) != null
}

/** The claims of the poisoned-answers scenario. */
export function checkPoisoned (f: PoisonedFigures): string[] {
  return new Claims()
    .claim('poison-happened', f.poisonedAnswers >= f.lookups / 2, `only ${f.poisonedAnswers} poisoned answers reached the victim`)
    .claim('readdress', f.readdressed === 0, `entries re-addressed ${f.readdressed} times: ${f.firstProblem}`)
    .claim('pushed-out', f.honestPushedOut === 0, `${f.honestPushedOut} honest entries pushed out: ${f.firstProblem}`)
    .claim('self', f.selfInTable === 0, 'the victim took itself into its table')
    .claim('invalid-addresses', f.invalidAddrEntries === 0, `${f.invalidAddrEntries} entries at invalid addresses: ${f.firstProblem}`)
    .claim('bounds', f.violations === 0, `table bounds broken: ${f.firstProblem}`)
    .claim('honest-found', f.honestFoundAfter === f.honestTriedAfter, `only ${f.honestFoundAfter} of ${f.honestTriedAfter} honest nodes found at their addresses afterwards`)
    .claim('rejections', f.rejections === 0, `${f.rejections} unhandled rejections`)
    .failed
}

/** Poisoned FIND_NODE answers. */
export const poisoned: Scenario<PoisonedSize, PoisonedFigures> = {
  name: 'poisoned',
  title: 'poisoned FIND_NODE answers',
  fast: { honest: 6, lookups: 16 },
  full: { honest: 16, lookups: 400 },
  run: runPoisoned,
  check: checkPoisoned
}
