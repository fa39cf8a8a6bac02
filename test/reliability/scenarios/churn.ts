import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { kadDiscovery } from '../../../src/index.js'
import { seededRandom } from '../../../src/table/random.js'
import { accuracy, FAST } from '../../utils/network.js'
import { NodeGroup, sleep } from '../utils/nodes.js'
import { Claims, quiet } from '../utils/scenario.js'
import { tableOf, tableViolations } from '../utils/table.js'
import { ProcessWatch, until } from '../utils/watch.js'
import type { KadDiscovery, KadDiscoveryInit } from '../../../src/index.js'
import type { DiscoveryNode } from '../../utils/network.js'
import type { Scenario } from '../utils/scenario.js'
import type { PrivateKey } from '@libp2p/interface'

/** How much churn. */
export interface ChurnSize {
  /** Nodes in the network. */
  nodes: number
  /** Nodes stopped during the churn (a third of them). */
  stopped: number
  /** Of those, how many come back later (same key, new address). */
  restarted: number
  /** ms between two churn events. */
  stepMs: number
  /** Lookups (from random live nodes to random keys) after each churn event. */
  lookupsPerStep: number
  /** The revalidation interval of every node, ms. */
  revalidateInterval: number
  /**
   * Whether refreshes also look up every bucket (the module's default). Both runs turn it
   * off (geth's refresh: self + 3 random lookups): a bucket-refreshing first refresh asks
   * some 300 nodes, and 100 of those at once only measure an overloaded machine.
   */
  bucketRefresh: boolean
  /** How long dead nodes may take to leave every live table after the churn, ms. */
  departureMs: number
}

/** What the churn came to. */
export interface ChurnFigures extends Record<string, number | string | boolean> {
  nodes: number
  stopped: number
  restarted: number
  lookups: number
  meanAccuracy: number
  minAccuracy: number
  lookupsBelow95: number
  deadTracked: number
  deadGone: number
  /** Per (live node, dead node): the live node's revalidation checks until the dead one left its table. */
  maxChecksToLeave: number
  meanChecksToLeave: number
  /**
   * 2 × nBuckets × bucketSize: twice the expected checks for the worst place a dead node
   * can hold (the head of a full bucket, with every bucket non-empty: each check takes
   * the last entry of a random bucket and moves it to the front, or drops it when dead).
   */
  checkBound: number
  tableSamples: number
  maxTableSize: number
  violations: number
  firstViolation: string
  rejections: number
}

const BUCKET_SIZE = 16
const N_BUCKETS = 17

/**
 * Churn. `nodes` discovery nodes on the memory transport; one event every `stepMs`: a
 * random live node stops, until `stopped` have, and `restarted` of them come back later
 * with their keys at new addresses. After each event, lookups from random live nodes must
 * find the live network's closest nodes (accuracy against the live set), and all along no
 * table may break its bounds. Every node that stays dead must leave every live table
 * within a bounded number of revalidation checks (`checkBound`).
 */
export async function runChurn (size: ChurnSize, log: (line: string) => void = quiet): Promise<ChurnFigures> {
  const group = new NodeGroup()
  const watch = new ProcessWatch()
  let sampler: NodeJS.Timeout | undefined
  try {
    const random = seededRandom(5)
    // every check at one pace: the scenario counts the checks a dead node survives
    const init: KadDiscoveryInit = { ...FAST, revalidateInterval: size.revalidateInterval, provenRevalidateInterval: size.revalidateInterval, bucketRefresh: size.bucketRefresh, autoDial: { enabled: false } }
    const keys: PrivateKey[] = await Promise.all(Array.from({ length: size.nodes }, async () => generateKeyPair('Ed25519')))
    const ids = keys.map(key => peerIdFromPrivateKey(key).toString())
    // BOUNDED: `nodes` slots; a slot holds the node now running under that key, if any
    const live: Array<DiscoveryNode | undefined> = []
    const start = async (i: number, bootnode?: string): Promise<DiscoveryNode> => {
      const node = await group.create<{ discovery: KadDiscovery }>({
        privateKey: keys[i],
        services: { discovery: kadDiscovery({ ...init, bootnodes: bootnode == null ? [] : [bootnode] }) }
      })
      live[i] = node
      return node
    }
    const boot = await start(0)
    const bootnode = boot.getMultiaddrs()[0]!.toString()
    const running = (): DiscoveryNode[] => live.filter((n): n is DiscoveryNode => n != null)
    // ten at a time, each ten once done with its first refresh: a hundred first refreshes at
    // once would only measure an overloaded machine
    for (let i = 1; i < size.nodes; i += 10) {
      await Promise.all(Array.from({ length: Math.min(10, size.nodes - i) }, async (_, j) => start(i + j, bootnode)))
      await until(() => running().every(n => tableOf(n.services.discovery).initDone), 120_000)
    }
    log(`${size.nodes} nodes up; mean table ${mean(running().map(n => n.services.discovery.size)).toFixed(1)}`)

    // watch every live table: bounds, and where the dead still are. A node's revalidation
    // checks are its PINGs sent (nothing else pings): counting them, not wall time, keeps
    // "cycles" honest on a busy machine, where timers run late
    const checksOf = (node: DiscoveryNode): number => (node.services.discovery as unknown as { client: { stats: Record<string, number> } }).client.stats['sent.PING'] ?? 0
    // BOUNDED: ≤ `stopped` entries
    const stoppedAt = new Set<string>()
    // BOUNDED: ≤ nodes × stopped entries each: per (observer, dead node), the observer's
    // checks when the node died (or when the observer started) and when it last held it
    const checksAtDeath = new Map<string, number>()
    const checksLastSeen = new Map<string, number>()
    let tableSamples = 0
    let maxTableSize = 0
    let violations = 0
    let firstViolation = ''
    sampler = setInterval(() => {
      for (const node of running()) {
        tableSamples++
        maxTableSize = Math.max(maxTableSize, node.services.discovery.size)
        const problems = tableViolations(node.services.discovery, node.peerId, init)
        violations += problems.length
        firstViolation = firstViolation === '' ? problems[0] ?? '' : firstViolation
        const checks = checksOf(node)
        for (const entry of node.services.discovery.nodes()) {
          const id = entry.id.toString()
          if (stoppedAt.has(id)) {
            const pair = `${node.peerId.toString()} ${id}`
            if (!checksAtDeath.has(pair)) {
              checksAtDeath.set(pair, checks)
            }
            checksLastSeen.set(pair, checks)
          }
        }
      }
    }, 100)

    // the churn, with lookups after every event
    const accuracies: number[] = []
    const lookupRound = async (): Promise<void> => {
      for (let l = 0; l < size.lookupsPerStep; l++) {
        const nodes = running()
        const source = nodes[random.int(nodes.length)] as DiscoveryNode
        const target = random.bytes(32)
        const found = await source.services.discovery.lookup(target, { signal: AbortSignal.timeout(30_000) }).catch(() => [])
        accuracies.push(accuracy(found, nodes.filter(n => !n.peerId.equals(source.peerId)), target))
      }
    }
    // a node back from the dead is no longer tracked as dead
    const forget = (id: string): void => {
      stoppedAt.delete(id)
      for (const pair of [...checksAtDeath.keys()].filter(p => p.endsWith(` ${id}`))) {
        checksAtDeath.delete(pair)
        checksLastSeen.delete(pair)
      }
    }
    // BOUNDED: ≤ `stopped` slot indexes
    const down: number[] = []
    let restarted = 0
    const events = size.stopped + size.restarted
    for (let e = 0; e < events; e++) {
      // restarts come in the second half, from nodes stopped at least two steps before
      const restart = restarted < size.restarted && down.length > 2 && e >= events - 2 * size.restarted && e % 2 === 1
      if (restart) {
        const i = down.splice(random.int(down.length - 2), 1)[0] as number
        forget(ids[i] as string)
        const nodes = running()
        await start(i, (nodes[random.int(nodes.length)] as DiscoveryNode).getMultiaddrs()[0]!.toString())
        restarted++
      } else if (down.length + restarted < size.stopped) {
        const candidates = live.flatMap((n, i) => n == null ? [] : [i])
        const i = candidates[random.int(candidates.length)] as number
        const node = live[i] as DiscoveryNode
        live[i] = undefined
        down.push(i)
        for (const observer of running()) {
          checksAtDeath.set(`${observer.peerId.toString()} ${node.peerId.toString()}`, checksOf(observer))
        }
        stoppedAt.add(node.peerId.toString())
        await group.stopOne(node)
      }
      await sleep(size.stepMs)
      await lookupRound()
      if (e % 5 === 4) {
        log(`${e + 1} of ${events} churn events; ${running().length} live; accuracy so far ${mean(accuracies).toFixed(3)}`)
      }
    }

    // dead nodes must leave every live table
    const inTables = (id: string): boolean => running().some(n => n.services.discovery.nodes().some(e => e.id.toString() === id))
    await until(() => [...stoppedAt].every(id => !inTables(id)), size.departureMs)
    clearInterval(sampler)
    await lookupRound()
    const deadGone = [...stoppedAt].filter(id => !inTables(id)).length
    const checks = [...checksLastSeen].map(([pair, last]) => last - (checksAtDeath.get(pair) ?? last) + 1)
    return {
      nodes: size.nodes,
      stopped: down.length + restarted,
      restarted,
      lookups: accuracies.length,
      meanAccuracy: round(mean(accuracies)),
      minAccuracy: round(Math.min(...accuracies)),
      lookupsBelow95: accuracies.filter(a => a < 0.95).length,
      deadTracked: stoppedAt.size,
      deadGone,
      maxChecksToLeave: Math.max(0, ...checks),
      meanChecksToLeave: round(mean(checks)),
      checkBound: 2 * N_BUCKETS * BUCKET_SIZE,
      tableSamples,
      maxTableSize,
      violations,
      firstViolation,
      rejections: watch.rejections.length
    }
  } finally {
    clearInterval(sampler)
    watch.stop()
    await group.stop()
  }
}

function mean (xs: number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((a, b) => a + b, 0) / xs.length
}

function round (x: number): number {
  return Math.round(x * 1000) / 1000
}

/** The claims of the churn scenario. */
export function checkChurn (f: ChurnFigures): string[] {
  return new Claims()
    .claim('accuracy', f.meanAccuracy >= 0.95, `lookups on the live set were ${f.meanAccuracy} accurate < 0.95`)
    .claim('dead-gone', f.deadGone === f.deadTracked, `${f.deadTracked - f.deadGone} dead nodes still in live tables at the end`)
    .claim('dead-checks', f.maxChecksToLeave <= f.checkBound, `a dead node stayed ${f.maxChecksToLeave} revalidation checks in a table > ${f.checkBound}`)
    .claim('bounds', f.violations === 0, `table bounds broken: ${f.firstViolation}`)
    .claim('rejections', f.rejections === 0, `${f.rejections} unhandled rejections`)
    .failed
}

/** Churn: a third of the network stopped at random, some restarted. */
export const churn: Scenario<ChurnSize, ChurnFigures> = {
  name: 'churn',
  title: 'churn: a third of the nodes stopped at random, some restarted',
  fast: { nodes: 20, stopped: 7, restarted: 2, stepMs: 200, lookupsPerStep: 2, revalidateInterval: 500, bucketRefresh: false, departureMs: 60_000 },
  full: { nodes: 100, stopped: 33, restarted: 10, stepMs: 1000, lookupsPerStep: 4, revalidateInterval: 3000, bucketRefresh: false, departureMs: 900_000 },
  run: runChurn,
  check: checkChurn
}
