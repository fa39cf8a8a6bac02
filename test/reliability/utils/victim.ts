import { kadDiscovery } from '../../../src/index.js'
import { FAST } from '../../utils/network.js'
import { ChildNode } from './child.js'
import { honestIP, sleep } from './nodes.js'
import { mib, until } from './watch.js'
import type { ChildConfig, ChildStats } from './child.js'
import type { NodeGroup } from './nodes.js'
import type { Claims } from './scenario.js'
import type { KadDiscovery, KadDiscoveryInit } from '../../../src/index.js'
import type { TestNode } from '../../utils/libp2p.js'

/** The victim's address: loopback, away from the honest nodes' 127.10+/16. */
export const VICTIM_IP = '127.7.0.1'

/** A victim in its own process and the honest nodes around it. */
export interface ChildVictim {
  victim: ChildNode
  /** Discovery nodes in this process that the victim's table holds. */
  peers: Array<TestNode<{ discovery: KadDiscovery }>>
  /** The victim's table, `id → addresses`, once it held every peer. */
  table: Map<string, string>
}

/**
 * Starts `peers` discovery nodes here (TCP, each at its own loopback /24, the first the
 * others' bootnode) and a victim node in a child process that joins them; waits (bounded)
 * until the victim's table holds every one of them, so a later change to it shows.
 */
export async function startChildVictim (group: NodeGroup, peers: number, victim: Partial<ChildConfig> = {}, peerInit: KadDiscoveryInit = {}): Promise<ChildVictim> {
  const common: KadDiscoveryInit = { ...FAST, revalidateInterval: 1000, autoDial: { enabled: false }, ...peerInit }
  const first = await group.create<{ discovery: KadDiscovery }>({ ip: honestIP(0), services: { discovery: kadDiscovery(common) } })
  const bootnode = first.getMultiaddrs()[0]!.toString()
  const child = await ChildNode.start({
    ip: VICTIM_IP,
    ...victim,
    init: { ...FAST, autoDial: { enabled: false }, ...victim.init, bootnodes: [bootnode] }
  })
  try {
    const rest = await group.createMany(peers - 1, i => ({ ip: honestIP(i + 1), services: { discovery: kadDiscovery({ ...common, bootnodes: [bootnode, child.addrs[0]!] }) } }))
    const all = [first, ...rest]
    const ids = all.map(p => p.peerId.toString())
    let table = new Map<string, string>()
    const complete = await until(async () => {
      table = new Map((await child.stats()).table)
      return ids.every(id => table.has(id))
    }, 60_000)
    if (!complete) {
      throw new Error(`the victim's table never held all ${peers} peers (it holds ${table.size})`)
    }
    return { victim: child, peers: all, table }
  } catch (err) {
    await child.stop()
    throw err
  }
}

/**
 * How much heap growth over the baseline still counts as "back to baseline". V8 keeps the
 * bytecode and type feedback of every code path a run took (in old space, so `settledHeap`
 * cannot leave it out): some 0.4–1 MiB after a run, whether of 2 000 frames or 12 000. A leak
 * of 200 bytes per request shows over 10 000 of them.
 */
export const HEAP_MARGIN = 2 * 1024 * 1024
/**
 * How long the heap may take to come back: libp2p arms a 10 s protocol-negotiation timer
 * per inbound stream (`AbortSignal.timeout`, held until it fires).
 */
const SETTLE_MS = 15_000

/** What a run left in the victim: its heap and whatever it still holds. */
export interface Aftermath extends Record<string, number | string | boolean> {
  /** The heap's objects before the run, settled (`settledHeap`: compiled code left out). */
  heapBaselineMiB: number
  /** The largest `heapUsed` sampled (every 10 ms) during the run: garbage not yet collected included. */
  heapPeakMiB: number
  /** The heap's objects after the run, settled. */
  heapAfterMiB: number
  heapGrowthKiB: number
  /** How long after the run the heap took to come back within the margin (bounded). */
  heapSettleMs: number
  /** The fewest requests the victim served at once while we waited for it to settle (bounded). */
  servingAfter: number
  /** Discovery streams open past twice the request timeout: held by no deadline, left behind. */
  streamsAfter: number
  /** How the streams left behind stand (empty when none). */
  streamsAfterStates: string
  victimRunning: boolean
  victimRejections: number
  victimExceptions: number
}

/** The victim's settled heap before a run, its peak reset: pass it to `aftermath`. */
export async function heapBaseline (victim: ChildNode): Promise<number> {
  const baseline = await victim.settledHeap()
  await snapshot(victim, 'before')
  await victim.call('resetPeak')
  return baseline
}

/**
 * With `KAD_SCENARIO_SNAPSHOTS=<folder>` set, writes the victim's heap snapshot there
 * (`<pid>-before` and `<pid>-after`), to find what a heap that does not settle holds.
 */
async function snapshot (victim: ChildNode, when: string): Promise<void> {
  const folder = process.env.KAD_SCENARIO_SNAPSHOTS
  if (folder != null) {
    await victim.call('heapSnapshot', `${folder}/${String(victim.process.pid)}-${when}.heapsnapshot`)
  }
}

/**
 * Waits (bounded) until the victim holds no stream and serves no request, then until its
 * heap is back within `HEAP_MARGIN` of `baseline` (bounded), and reports both.
 */
export async function aftermath (victim: ChildNode, baseline: number): Promise<{ stats: ChildStats, figures: Aftermath }> {
  // a request left behind is served at every read; one just begun (revalidation, an
  // introduction from an honest peer) only at some, so the fewest seen is what counts
  let fewestServing = Number.POSITIVE_INFINITY
  await until(async () => {
    const s = await victim.stats()
    fewestServing = Math.min(fewestServing, s.serving)
    return s.serving === 0 && s.streams === 0
  }, 30_000)
  const stats = await victim.stats()
  const settleStart = Date.now()
  let heap = await victim.settledHeap()
  while (heap - baseline > HEAP_MARGIN && Date.now() - settleStart < SETTLE_MS) {
    await sleep(1000)
    heap = await victim.settledHeap()
  }
  await snapshot(victim, 'after')
  return {
    stats,
    figures: {
      heapBaselineMiB: mib(baseline),
      heapPeakMiB: mib(stats.heapPeak),
      heapAfterMiB: mib(heap),
      heapGrowthKiB: Math.round((heap - baseline) / 1024),
      heapSettleMs: Date.now() - settleStart,
      servingAfter: fewestServing,
      streamsAfter: stats.lingeringStreams,
      streamsAfterStates: stats.streamStates,
      victimRunning: victim.running,
      victimRejections: stats.rejections,
      victimExceptions: stats.exceptions
    }
  }
}

/** The claims every victim run makes: nothing left behind, heap back, no crash or unhandled failure. */
export function aftermathClaims (claims: Claims, f: Aftermath): Claims {
  return claims
    .claim('left-behind', f.servingAfter === 0 && f.streamsAfter === 0, `left behind: ${f.servingAfter} requests, ${f.streamsAfter} streams (${f.streamsAfterStates})`)
    .claim('heap-after', f.heapGrowthKiB * 1024 <= HEAP_MARGIN, `the heap stayed ${f.heapGrowthKiB} KiB over its baseline > ${HEAP_MARGIN / 1024} KiB`)
    .claim('victim-alive', f.victimRunning && f.victimRejections === 0 && f.victimExceptions === 0,
      `the victim ${f.victimRunning ? 'ran' : 'died'}, with ${f.victimRejections} unhandled rejections and ${f.victimExceptions} uncaught exceptions`)
}
