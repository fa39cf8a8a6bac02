import { randomInt } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { sha256 } from '@noble/hashes/sha2.js'
import { xor } from 'uint8arrays/xor'
import { xorCompare } from 'uint8arrays/xor-compare'
import { CliError, ExitCode, firstLine } from './errors.js'
import { connectedPeers, createCliNode, dialableAddrs, stopAll } from './libp2p.js'
import { elapsed, Progress } from './progress.js'
import { deadlineSignal, listenForStop, pause } from './signals.js'
import { count, spread, summaryLines } from './summary.js'
import type { DemoOptions } from './args.js'
import type { CliNode } from './libp2p.js'
import type { ProgressStream } from './progress.js'
import type { DemoResult, LookupScore } from './summary.js'
import type { PeerId } from '@libp2p/interface'
import type { KadDiscoveryInit } from 'libp2p-kad-discovery'

// geth's k: a full table and the auto-dialer's goal (min(k, N − 1) in a small network)
const K = 16
// geth's revalidation interval is 10 s; every 5 s shows liveness checks at work within a
// demo without adding much to the start-up storm (every node's first refresh at once).
// Tables fill through refresh lookups and inbound contacts, not through revalidation.
// A dial that failed is not retried for geth's 35 s: in a 40-node network on a busy
// machine, a few timed-out dials would hold a node below its goal for most of the demo.
const DEMO_SETTINGS: KadDiscoveryInit = {
  revalidateInterval: 5000,
  autoDial: { dialHistoryExpiration: 5000 }
}
// Every TCP node of the demo is 127.0.0.1, and libp2p refuses more than 5 inbound
// connections a second from one host: a bootnode would turn most joining nodes away
// (and a node whose table loses its only entry waits for the next refresh, 30 min). Real
// nodes come from many hosts; in the demo the per-host limit only measures the demo.
const LOOPBACK_LIMITS = { inboundConnectionThreshold: 1000 }
// how often the watch loop samples the network
const SAMPLE_INTERVAL = 200
// lookups start once the event loop is below this share busy (sampled every
// SETTLE_SAMPLE ms), or after SETTLE_TIMEOUT whatever it is
const SETTLED_UTILIZATION = 0.4
const SETTLE_SAMPLE = 1000
const SETTLE_TIMEOUT = 40_000
// one lookup, and all of them together, are bounded too
const LOOKUP_TIMEOUT = 20_000
const LOOKUPS_TIMEOUT = 25_000
// one at a time, as a user's lookups and the comparison bench's run: the storm has passed
// by then, and lookups run side by side on one thread would measure each other
const LOOKUP_CONCURRENCY = 1
// a node that will not stop must not keep the demo from exiting
const STOP_TIMEOUT = 15_000

/**
 * `kad-discovery demo`: a local network of `options.nodes` nodes (one bootnode, every
 * other node knowing only it), progress while tables fill and the auto-dialer connects,
 * lookups checked against the true closest nodes, a summary. Returns the exit code.
 */
export async function runDemo (options: DemoOptions, stream: ProgressStream = process.stdout): Promise<number> {
  const stop = listenForStop()
  const progress = new Progress({ stream })
  const nodes: CliNode[] = []
  let code: number
  try {
    code = await demo(options, nodes, progress, stop.signal)
  } finally {
    progress.done()
    await stopNetwork(nodes, progress)
    stop.dispose()
  }
  if (stop.signal.aborted) {
    progress.log(`interrupted by ${stop.received ?? 'a signal'}`)
    return ExitCode.Interrupted
  }
  return code
}

async function demo (options: DemoOptions, nodes: CliNode[], progress: Progress, signal: AbortSignal): Promise<number> {
  const target = Math.min(K, options.nodes - 1)
  const started = Date.now()
  await startNetwork(options, target, nodes, progress, signal)
  const startup = Date.now() - started
  const watched = await watch(nodes, target, started, options.timeout, progress, signal)
  await settle(progress, signal)
  const lookups = await runLookups(nodes, options.lookups, progress, signal)
  if (signal.aborted) {
    return ExitCode.Interrupted
  }
  const result: DemoResult = {
    options,
    target,
    startup,
    ...watched,
    lookups,
    sizes: nodes.map(n => n.services.discovery.size),
    connections: nodes.map(connectedPeers)
  }
  const { lines, worked } = summaryLines(result)
  for (const line of lines) {
    progress.log(line)
  }
  return worked ? ExitCode.Ok : ExitCode.Failure
}

/** The bootnode first, then every other node with only the bootnode to join through. */
async function startNetwork (options: DemoOptions, target: number, nodes: CliNode[], progress: Progress, signal: AbortSignal): Promise<void> {
  const listen = (i: number): string[] => options.transport === 'tcp'
    ? ['/ip4/127.0.0.1/tcp/0']
    : [`/memory/kad-discovery-demo-${process.pid}-${i}`]
  const discovery = { ...DEMO_SETTINGS, autoDial: { ...DEMO_SETTINGS.autoDial, minConnections: target } }
  progress.log(`starting ${options.nodes} nodes on the ${options.transport} transport (${options.transport === 'tcp' ? '127.0.0.1 only' : 'in this process'})`)
  const boot = await create({ transport: options.transport, listen: listen(0), discovery, connectionManager: LOOPBACK_LIMITS })
  nodes.push(boot)
  const bootnode = dialableAddrs(boot)[0]
  if (bootnode == null) {
    throw new CliError('the bootnode has no address', ExitCode.Failure)
  }
  progress.log(`bootnode ${bootnode}`)
  // one after another, as nodes join a real network: started all at once, every node
  // would bootstrap from a bootnode that knows no one yet
  for (let i = 1; i < options.nodes && !signal.aborted; i++) {
    nodes.push(await create({ transport: options.transport, listen: listen(i), discovery: { ...discovery, bootnodes: [bootnode] }, connectionManager: LOOPBACK_LIMITS }))
    progress.update(`started ${i + 1}/${options.nodes} nodes`)
  }
  progress.done()
}

async function create (init: Parameters<typeof createCliNode>[0]): Promise<CliNode> {
  try {
    return await createCliNode(init)
  } catch (err) {
    throw new CliError(`could not start a node: ${firstLine(err)}`, ExitCode.Failure)
  }
}

/** When every node had first met each target, ms after the demo began; absent when some never did. */
interface WatchResult {
  fullTablesAfter?: number
  connectedAfter?: number
  /** How long the demo had run when the watch ended. */
  watched: number
}

/**
 * Samples every table and connection count until every node has held `target` table
 * nodes and had `target` connected peers (each node's first time counts: connections
 * come and go as request connections close), or `timeout` passes, or the user stops.
 */
async function watch (nodes: CliNode[], target: number, started: number, timeout: number, progress: Progress, signal: AbortSignal): Promise<WatchResult> {
  const deadline = Date.now() + timeout
  const tables = new FirstReach(nodes.length)
  const conns = new FirstReach(nodes.length)
  // BOUNDED: the loop ends at the deadline at the latest
  while (!signal.aborted && Date.now() < deadline) {
    const now = Date.now()
    const sizes = nodes.map(n => n.services.discovery.size)
    const peers = nodes.map(connectedPeers)
    if (tables.sample(sizes.map(s => s >= target), now - started)) {
      progress.log(`every table has held ${count(target, 'node')}, ${elapsed(started, now)} after start`)
    }
    if (conns.sample(peers.map(c => c >= target), now - started)) {
      progress.log(`every node has had ${count(target, 'connection')}, ${elapsed(started, now)} after start`)
    }
    const t = spread(sizes)
    const c = spread(peers)
    progress.update(`${elapsed(started, now).padStart(6)}  tables: ${tables.count}/${nodes.length} reached ${target} (now min ${t.min}, median ${t.median}, max ${t.max})  ` +
      `connections: ${conns.count}/${nodes.length} reached ${target} (now min ${c.min}, median ${c.median}, max ${c.max})`)
    if (tables.all != null && conns.all != null) {
      break
    }
    await pause(SAMPLE_INTERVAL, signal)
  }
  progress.done()
  return { fullTablesAfter: tables.all, connectedAfter: conns.all, watched: Date.now() - started }
}

/** Which nodes have met a target, and when the last of them first did. */
class FirstReach {
  // BOUNDED: one flag per node
  private readonly reached: boolean[]
  /** How many nodes have met it. */
  count = 0
  /** When the last node first met it; absent until every node has. */
  all?: number

  constructor (size: number) {
    this.reached = new Array<boolean>(size).fill(false)
  }

  /** Records a sample; true when this one completed the set. */
  sample (met: boolean[], at: number): boolean {
    met.forEach((ok, i) => {
      if (ok && this.reached[i] === false) {
        this.reached[i] = true
        this.count++
      }
    })
    if (this.all == null && this.count === this.reached.length) {
      this.all = at
      return true
    }
    return false
  }
}

/**
 * Waits (at most SETTLE_TIMEOUT) until the process's event loop is no longer saturated:
 * every node's first refresh runs at once when the demo starts, 40 nodes sharing one
 * JavaScript thread, and lookups run in that storm measure the storm. A real network's
 * nodes start at different times on machines of their own.
 */
async function settle (progress: Progress, signal: AbortSignal): Promise<void> {
  const until = Date.now() + SETTLE_TIMEOUT
  let mark = performance.eventLoopUtilization()
  // BOUNDED: SETTLE_TIMEOUT / SAMPLE_INTERVAL samples at most
  while (Date.now() < until && !signal.aborted) {
    await pause(SETTLE_SAMPLE, signal)
    const now = performance.eventLoopUtilization()
    const busy = performance.eventLoopUtilization(now, mark).utilization
    mark = now
    progress.update(`waiting for the start-up storm to pass: event loop ${(busy * 100).toFixed(0)}% busy`)
    if (busy < SETTLED_UTILIZATION) {
      break
    }
  }
  progress.done()
}

/**
 * `count` lookups of random keys from random nodes, each scored against the true `K`
 * closest nodes to its key (computed from every node's key, the source left out: a node
 * is not an answer to its own lookup).
 */
async function runLookups (nodes: CliNode[], count: number, progress: Progress, signal: AbortSignal): Promise<LookupScore[]> {
  const scores: LookupScore[] = []
  const all = deadlineSignal(LOOKUPS_TIMEOUT, signal)
  let started = 0
  try {
    await Promise.all(Array.from({ length: LOOKUP_CONCURRENCY }, async () => {
      // BOUNDED: `count` lookups in all, and none starts after the deadline
      while (started < count && !all.signal.aborted) {
        started++
        scores.push(await scoredLookup(nodes, all.signal))
        const mean = scores.reduce((sum, s) => sum + s.accuracy, 0) / scores.length
        progress.update(`lookups ${scores.length}/${count}  accuracy so far ${(mean * 100).toFixed(1)}%`)
      }
    }))
  } finally {
    all.clear()
  }
  progress.done()
  return scores
}

/** One lookup of a random key from a random node, scored; bounded by `LOOKUP_TIMEOUT`. */
async function scoredLookup (nodes: CliNode[], signal: AbortSignal): Promise<LookupScore> {
  const source = nodes[randomInt(nodes.length)]!
  const key = crypto.getRandomValues(new Uint8Array(32))
  const begun = Date.now()
  const one = deadlineSignal(LOOKUP_TIMEOUT, signal)
  try {
    const found = await source.services.discovery.lookup(key, { signal: one.signal })
    return { accuracy: accuracy(found.map(p => p.id.toString()), nodes, source, key), ms: Date.now() - begun, answered: found.length > 0 }
  } catch {
    // failed or timed out: scored 0, and the summary counts it as unanswered
    return { accuracy: 0, ms: Date.now() - begun, answered: false }
  } finally {
    one.clear()
  }
}

/**
 * A node's key as the library defines it (DESIGN.md §4, libp2p's Kademlia convention):
 * `sha256` of its peer id's multihash bytes. Computed here because the library's own
 * key code is not public API.
 */
function keyOf (peerId: PeerId): Uint8Array {
  return sha256(peerId.toMultihash().bytes)
}

/** The share of the true closest nodes to `key` (all but `source`) among the first found. */
function accuracy (found: string[], nodes: CliNode[], source: CliNode, key: Uint8Array): number {
  const truth = nodes
    .filter(n => !n.peerId.equals(source.peerId))
    .map(n => ({ id: n.peerId.toString(), distance: xor(keyOf(n.peerId), key) }))
    .sort((a, b) => xorCompare(a.distance, b.distance))
    .slice(0, K)
  const want = new Set(truth.map(t => t.id))
  return truth.length === 0 ? 1 : found.slice(0, K).filter(id => want.has(id)).length / truth.length
}

/** Stops every node, bounded: a stuck node is reported and left to the process exit. */
async function stopNetwork (nodes: CliNode[], progress: Progress): Promise<void> {
  if (nodes.length === 0) {
    return
  }
  progress.log(`stopping ${nodes.length} nodes`)
  const cancel = new AbortController()
  const timedOut = await Promise.race([
    stopAll(nodes).then(() => false),
    pause(STOP_TIMEOUT, cancel.signal).then(() => !cancel.signal.aborted)
  ])
  cancel.abort()
  if (timedOut) {
    progress.log(`some nodes did not stop within ${STOP_TIMEOUT / 1000}s; exiting anyway`)
  }
}
