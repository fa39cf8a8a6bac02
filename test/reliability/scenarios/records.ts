import { generateKeyPair } from '@libp2p/crypto/keys'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { multiaddr } from '@multiformats/multiaddr'
import { kadDiscovery } from '../../../src/index.js'
import { toPbPeer } from '../../../src/protocol/convert.js'
import { Message } from '../../../src/protocol/pb/message.js'
import { keyAtDistance, keyOf } from '../../../src/table/key.js'
import { seededRandom } from '../../../src/table/random.js'
import { frame } from '../../protocol/utils.js'
import { FAST } from '../../utils/network.js'
import { honestIP, NodeGroup } from '../utils/nodes.js'
import { Claims, quiet } from '../utils/scenario.js'
import { tableViolations } from '../utils/table.js'
import { ProcessWatch, until } from '../utils/watch.js'
import { serveByHand } from '../utils/wire.js'
import type { KadDiscovery, KadDiscoveryInit } from '../../../src/index.js'
import type { TestNode } from '../../utils/libp2p.js'
import type { Scenario } from '../utils/scenario.js'
import type { PeerId } from '@libp2p/interface'

/** How big the records scenario is. */
export interface RecordsSize {
  /** Honest discovery nodes, each in a /24 of its own. */
  honest: number
  /** Lookups the victim runs through the liar after the move. */
  lookups: number
}

/** What the records scenario came to. */
export interface RecordsFigures extends Record<string, number | string | boolean> {
  /** Whether one refresh found the moved node at its new address. */
  moverFoundAtNewAddress: boolean
  /** How long that refresh took, in ms. */
  refreshMs: number
  liarAnswers: number
  forgedOffered: number
  forgedRefused: number
  wrongKeyOffered: number
  wrongKeyRefused: number
  replayedOffered: number
  /** Every record refused as older than the one held: the liar's replays and honest senders' older ones. */
  replayedRefused: number
  /** Entries other than the liar's at the liar's address, summed over samples. */
  hijackedEntries: number
  /** Samples where the moved node was back at its old address. */
  moverBackAtOldAddress: number
  recordsVerified: number
  violations: number
  firstProblem: string
  rejections: number
}

const MOVER_OLD_IP = '127.7.0.1'
const MOVER_NEW_IP = '127.7.1.1'
const LIAR_IP = '127.8.0.1'
const VICTIM_IP = '127.9.0.1'

type Discovering = TestNode<{ discovery: KadDiscovery }>

/** The client counters of a discovery service (its client is private). */
function clientStats (discovery: KadDiscovery): Record<string, number> {
  return (discovery as unknown as { client: { stats: Record<string, number> } }).client.stats
}

/**
 * Signed peer records (issue 13). A victim learns an honest network and a node that then
 * moves: it stops and comes back with the same key at another address, and the honest
 * nodes learn its new record through identify. One refresh of the victim must find it
 * there (its old entry is re-addressed by the newer record, or replaced by it), long
 * before the 24 h expiry. Then a liar answers the victim's lookups with honest ids and
 * the mover carrying records that are forged (a signature that does not verify), signed
 * by the liar's key, or replayed (the mover's genuine older record): each one must be
 * refused and counted, and no entry may move to an address the liar names.
 */
export async function runRecords (size: RecordsSize, log: (line: string) => void = quiet): Promise<RecordsFigures> {
  const group = new NodeGroup()
  const watch = new ProcessWatch()
  try {
    const random = seededRandom(13)
    const common: KadDiscoveryInit = { ...FAST, allowLan: false, refreshInterval: 60_000, revalidateInterval: 60_000, autoDial: { enabled: false } }
    const honest: Discovering[] = []
    honest.push(await group.create({ ip: honestIP(0), services: { discovery: kadDiscovery(common) } }))
    const bootnode = honest[0]!.getMultiaddrs()[0]!.toString()
    honest.push(...await group.createMany(size.honest - 1, i => ({
      ip: honestIP(i + 1),
      services: { discovery: kadDiscovery({ ...common, bootnodes: [bootnode] }) }
    })))
    const moverKey = await generateKeyPair('Ed25519')
    const mover = await group.create<{ discovery: KadDiscovery }>({ ip: MOVER_OLD_IP, privateKey: moverKey, services: { discovery: kadDiscovery({ ...common, bootnodes: [bootnode] }) } })
    const moverId = mover.peerId
    await until(() => honest.every(n => n.services.discovery.size >= Math.min(size.honest, 4)), 30_000)

    const liar = await group.create({ ip: LIAR_IP })
    const liarAddr = liar.getMultiaddrs()[0]!.decapsulateCode(421)
    const victimInit: KadDiscoveryInit = { ...common, bootnodes: [bootnode, liar.getMultiaddrs()[0]!.toString()] }
    const victim = await group.create<{ discovery: KadDiscovery }>({ ip: VICTIM_IP, services: { discovery: kadDiscovery(victimInit) } })
    const discovery = victim.services.discovery
    const holds = (id: PeerId, ip?: string): boolean => discovery.nodes().some(n => n.id.equals(id) && (ip == null || n.multiaddrs.some(ma => ma.toString().includes(`/${ip}/`))))
    await until(() => holds(moverId, MOVER_OLD_IP), 30_000)
    log(`victim holds the mover at its old address; table ${discovery.size}`)

    // the mover's genuine record as an honest node holds it now: replayed after the move
    await until(async () => (await honest[0]!.peerStore.get(moverId).catch(() => undefined))?.peerRecordEnvelope != null, 10_000)
    const oldRecord = new Uint8Array((await honest[0]!.peerStore.get(moverId)).peerRecordEnvelope ?? new Uint8Array(0))

    // the move: same key, another address; its lookups reach the honest nodes, whose
    // identify stores its newer record
    await mover.stop()
    const moved = await group.create<{ discovery: KadDiscovery }>({ ip: MOVER_NEW_IP, privateKey: moverKey, services: { discovery: kadDiscovery({ ...common, bootnodes: [bootnode] }) } })
    await until(async () => {
      let knowing = 0
      for (const h of honest) {
        const peer = await h.peerStore.get(moverId).catch(() => undefined)
        knowing += peer?.addresses.some(a => a.isCertified && a.multiaddr.toString().includes(`/${MOVER_NEW_IP}/`)) === true ? 1 : 0
      }
      return knowing >= Math.min(3, size.honest)
    }, 30_000)
    log(`the mover is at ${moved.getMultiaddrs()[0]?.toString() ?? '?'}; honest nodes hold its new record`)

    const refreshStart = Date.now()
    await discovery.refresh({ signal: AbortSignal.timeout(60_000) })
    const refreshMs = Date.now() - refreshStart
    const moverFoundAtNewAddress = holds(moverId, MOVER_NEW_IP)
    log(`after one refresh (${refreshMs} ms) the victim holds the mover at its new address: ${moverFoundAtNewAddress}`)
    // the liar: lies only to the victim (honest nodes that learn of it get empty answers)
    const liarKey = await generateKeyPair('Ed25519')
    const honestRecord = new Uint8Array((await honest[0]!.peerStore.get(honest[1]!.peerId)).peerRecordEnvelope ?? new Uint8Array(0))
    // a forgery that could do harm: honest[1] at the liar's address, with a newer sequence
    // number, under honest[1]'s key and the signature of its genuine record (which does
    // not cover this payload). One that claims no newer number could change nothing, and
    // is never checked
    const genuine = RecordEnvelope.createFromProtobuf(honestRecord)
    const forged = new Uint8Array(new RecordEnvelope({
      publicKey: genuine.publicKey,
      payloadType: genuine.payloadType,
      payload: new PeerRecord({ peerId: honest[1]!.peerId, multiaddrs: [liarAddr], seqNumber: PeerRecord.createFromProtobuf(genuine.payload).seqNumber + 1_000_000n }).marshal(),
      signature: genuine.signature
    }).marshal())
    let liarAnswers = 0
    let forgedOffered = 0
    let wrongKeyOffered = 0
    let replayedOffered = 0
    await serveByHand(liar, (request, connection) => {
      if (request.type === Message.Type.PING) {
        return frame(Message.encode({ type: Message.Type.PONG, peers: [] }))
      }
      if (!connection.remotePeer.equals(victim.peerId)) {
        return frame(Message.encode({ type: Message.Type.NODES, peers: [] }))
      }
      liarAnswers++
      forgedOffered++
      wrongKeyOffered++
      replayedOffered++
      return frame(Message.encode({
        type: Message.Type.NODES,
        peers: [
          toPbPeer(honest[1]!.peerId, [liarAddr], forged),
          toPbPeer(honest[2 % honest.length]!.peerId, [liarAddr], wrongKeyRecords.get(honest[2 % honest.length]!.peerId.toString())),
          toPbPeer(moverId, [multiaddr(`/ip4/${MOVER_OLD_IP}/tcp/4001`)], oldRecord)
        ]
      }))
    })
    // records naming honest nodes at the liar's address, signed by the liar's key
    const wrongKeyRecords = new Map<string, Uint8Array<ArrayBuffer>>()
    for (const h of honest) {
      const record = new PeerRecord({ peerId: h.peerId, multiaddrs: [liarAddr] })
      wrongKeyRecords.set(h.peerId.toString(), new Uint8Array((await RecordEnvelope.seal(record, liarKey)).marshal()))
    }
    await until(() => holds(liar.peerId), 10_000)

    let hijackedEntries = 0
    let moverBackAtOldAddress = 0
    let violations = 0
    let firstProblem = ''
    const problem = (what: string): void => { firstProblem = firstProblem === '' ? what : firstProblem }
    const sample = (): void => {
      for (const node of discovery.nodes()) {
        if (!node.id.equals(liar.peerId) && node.multiaddrs.some(ma => ma.toString().includes(`/${LIAR_IP}/`))) {
          hijackedEntries++
          problem(`${node.id.toString()} at the liar's address`)
        }
      }
      if (holds(moverId, MOVER_OLD_IP)) {
        moverBackAtOldAddress++
        problem('the mover is back at its old address')
      }
      const broken = tableViolations(discovery, victim.peerId, victimInit)
      violations += broken.length
      broken.forEach(problem)
    }
    const sampler = setInterval(sample, 50)
    try {
      for (let i = 0; i < size.lookups; i++) {
        // aimed next to the liar, so it is asked every time
        await discovery.lookup(keyAtDistance(keyOf(liar.peerId), 250, random.bytes(32)), { signal: AbortSignal.timeout(30_000) }).catch(() => {})
      }
    } finally {
      clearInterval(sampler)
    }
    sample()
    const stats = clientStats(discovery)
    return {
      moverFoundAtNewAddress,
      refreshMs,
      liarAnswers,
      forgedOffered,
      forgedRefused: stats['recordRefused.bad-signature'] ?? 0,
      wrongKeyOffered,
      wrongKeyRefused: stats['recordRefused.wrong-signer'] ?? 0,
      replayedOffered,
      replayedRefused: stats['recordRefused.stale'] ?? 0,
      hijackedEntries,
      moverBackAtOldAddress,
      recordsVerified: stats.recordVerified ?? 0,
      violations,
      firstProblem,
      rejections: watch.rejections.length
    }
  } finally {
    watch.stop()
    await group.stop()
  }
}

/** The claims of the records scenario. */
export function checkRecords (f: RecordsFigures): string[] {
  return new Claims()
    .claim('moved-found', f.moverFoundAtNewAddress, 'one refresh did not find the moved node at its new address')
    .claim('lies-told', f.liarAnswers > 0, 'the liar was never asked')
    .claim('forged', f.forgedRefused === f.forgedOffered, `${f.forgedRefused} of ${f.forgedOffered} forged records refused`)
    .claim('wrong-key', f.wrongKeyRefused === f.wrongKeyOffered, `${f.wrongKeyRefused} of ${f.wrongKeyOffered} records signed by the wrong key refused`)
    // honest senders hand out older records too (libp2p's identify seals a new record per
    // answer, so peers hold records of different ages): stale refusals count those as well
    .claim('replayed', f.replayedRefused >= f.replayedOffered, `${f.replayedRefused} stale records refused, ${f.replayedOffered} replayed`)
    .claim('hijack', f.hijackedEntries === 0, `entries at the liar's address: ${f.firstProblem}`)
    .claim('mover-stays', f.moverBackAtOldAddress === 0, f.firstProblem)
    .claim('bounds', f.violations === 0, `table bounds broken: ${f.firstProblem}`)
    .claim('rejections', f.rejections === 0, `${f.rejections} unhandled rejections`)
    .failed
}

/** Signed peer records: a moved node found through its record, forged and replayed ones refused. */
export const records: Scenario<RecordsSize, RecordsFigures> = {
  name: 'records',
  title: 'signed peer records: a moved node, forged, wrong-key and replayed records',
  fast: { honest: 6, lookups: 8 },
  full: { honest: 16, lookups: 200 },
  run: runRecords,
  check: checkRecords
}
