import { setMaxListeners } from 'node:events'
import { performance } from 'node:perf_hooks'
import { dialAddress, inBatches, within } from './nodes.js'
import { accuracyOf, cpuSeconds, memorySample, mean, percentile, settledMemorySample, spread, trueClosest } from './scenario.js'
import type { Identity } from './nodes.js'
import type { LookupPlan, MemorySample } from './scenario.js'
import type { Libp2p } from '@libp2p/interface'

/** What one lookup returned and cost. */
export interface LookupOutcome {
  /** Peer ids returned, closest first. */
  found: string[]
  /** Requests the lookup started (FIND_NODE in both systems). */
  messages: number
  /** Further counts, system specific (answers, errors, …). */
  detail: Record<string, number>
}

/** One running node of a system. */
export interface SystemNode {
  libp2p: Libp2p
  /** How many peers its table holds. */
  tableSize(): number
  /** Runs `plan`'s lookup from this node. */
  lookup(plan: LookupPlan, signal: AbortSignal): Promise<LookupOutcome>
}

/** A system under test: how to make a node and what to report about all of them. */
export interface System {
  name: 'ours' | 'kad-dht'
  /**
   * Creates and starts a node that knows the bootnode addresses (the 3 bootnodes but
   * itself); `observe` is called with the libp2p node before it starts (to count its
   * connections from the first).
   */
  create(identity: Identity, size: number, bootnodes: string[], observe: (libp2p: Libp2p) => void): Promise<SystemNode>
  /** Counters and per-node figures, read while every node still runs. */
  summary(nodes: SystemNode[]): Record<string, unknown>
  /**
   * The system's own running totals over every node, when it keeps them: requests sent
   * and connections it opened itself. Read before and after the quiet window.
   */
  traffic?(nodes: SystemNode[]): { requests: number, connectionsOpened: number, revalidationDials?: number }
}

/** How one system is run. */
export interface RunOptions {
  identities: Identity[]
  plan: LookupPlan[]
  /** Give up waiting for every table to fill after this many ms (from the first node's creation). */
  fillTimeoutMs: number
  /** Time limit of one lookup. */
  lookupTimeoutMs: number
  /** Lookups not started within this many ms of the first are not run (and count as failed). */
  lookupBudgetMs: number
  /** ms between the starts of consecutive nodes after the bootnodes (0: 20 at a time, at once). */
  arrivalMs: number
  /** Length of the quiet window after the lookups (0: none). */
  quietMs: number
  /** Called with progress lines. */
  log(line: string): void
}

/** One lookup as measured. */
export interface LookupFigures {
  source: number
  target: string
  ms: number
  messages: number
  accuracy: number
  returned: number
  error?: string
  detail: Record<string, number>
}

/** Every figure of one system at one size. */
export interface SystemFigures {
  system: string
  nodes: number
  /** Table size every node must reach: min(16, N − 1). */
  threshold: number
  createSeconds: number
  fill: {
    finished: boolean
    /** Seconds from the first node's creation until every table held `threshold`; null if never. */
    seconds: number | null
    /** Nodes whose table held `threshold` at the end of the wait. */
    reached: number
    /** Nodes whose table was empty at the end of the wait. */
    empty: number
    /** Nodes whose table held at least one peer at the end of the wait: N − empty. (v2) */
    joined: number
    tableSizes: { min: number, median: number, max: number }
    /**
     * [seconds since the first node's creation, nodes at threshold, nodes with a non-empty
     * table], once a second from the first creation to the end of the wait (v1: the first
     * two only, and from the end of creation).
     */
    timeline: Array<[number, number, number?]>
  }
  lookups: {
    count: number
    failed: number
    /** Mean over every planned lookup; a failed or unrun lookup counts 0. */
    accuracy: number
    /** Mean over the lookups that returned. */
    accuracyCompleted: number
    /** Lowest accuracy among the lookups that returned; NaN (null in JSON) if none did. (v2) */
    accuracyMinCompleted: number
    /** Lookups started (the rest were not run: the lookup budget was spent). (v2) */
    run: number
    /** Wall time of the lookup phase, and its end in seconds since the first node's creation. (v2) */
    phaseSeconds: number
    endSeconds: number
    ms: { median: number, p95: number, mean: number }
    messages: { median: number, p95: number, mean: number }
    each: LookupFigures[]
  }
  memory: {
    baseline: MemorySample
    afterFill: MemorySample
    afterLookups: MemorySample
    heapPerNode: number
    rssPerNode: number
    heapPerNodeAfterFill: number
    rssPerNodeAfterFill: number
  }
  /** CPU seconds per phase; `total` is create to stop without the quiet window (as in v1). */
  cpu: { create: number, fill: number, lookups: number, quiet?: number, stop: number, total: number }
  /** Wall time from the first creation to the last stop, without the quiet window. */
  wallSeconds: number
  connections: {
    perNodeAfterFill: { min: number, median: number, max: number }
    perNodeAtEnd: { min: number, median: number, max: number }
    bootnodesAfterFill: number[]
    bootnodesAtEnd: number[]
    /**
     * libp2p connections opened (`connection:open`, counted once, at the dialing side),
     * by phase, over every node. (v2)
     */
    opened: {
      /** From the first creation to the end of the fill wait. */
      fill: OpenedCount & { perNode: number, perNodeSpread: { min: number, median: number, max: number } }
      /** During the lookup phase, by every node (lookups and any background work). */
      lookups: OpenedCount & { perLookup: number }
    }
  }
  /** Event loop utilization (0 … 1) while creating and filling, and while looking up: 1 is saturated. */
  eventLoop: { fill: number, lookups: number }
  /**
   * The quiet window after the lookups (null when not run): what the settled network still
   * costs, per node per minute. (v2)
   */
  quiet: QuietFigures | null
  stoppedCleanly: number
  /** `system.summary` when every table was full (or the wait ended), and after the lookups. */
  summaryAfterFill: Record<string, unknown>
  summary: Record<string, unknown>
}

/** Connections opened in one phase. */
export interface OpenedCount {
  /** Outbound `connection:open` events: each connection between two nodes once. */
  total: number
  /** Inbound ones, as a check: equal to `total` unless a dial or accept was cut short. */
  inbound: number
}

/** What the settled network does with nobody looking anything up. */
export interface QuietFigures {
  seconds: number
  /** libp2p connections opened (outbound), per node per minute. */
  connectionsPerNodePerMinute: number
  /** Requests the system sent, per node per minute (`System.traffic`; null if it has none). */
  requestsPerNodePerMinute: number | null
  /** Connections the system itself opened (`System.traffic`), per node per minute. */
  ownConnectionsPerNodePerMinute: number | null
  /** Of those, the ones revalidation's pings dialed, per node per minute (ours only). */
  revalidationDialsPerNodePerMinute?: number | null
  eventLoop: number
  cpu: number
  connectionsPerNodeAtEnd: { min: number, median: number, max: number }
  /**
   * Heap per node (after a full GC) at the window's end: the network as it runs on,
   * beside `memory.heapPerNode`, read as the lookups end (for a fast-filling system,
   * still inside its start-up burst).
   */
  heapPerNode: number
  /** Seconds from the first node's start to that reading. */
  heapReadAtSeconds: number
}

const POLL_MS = 250
const SAMPLE_MS = 1000
// bootnodes are nodes 0, 1 and 2
const BOOTNODES = 3
const CREATE_CONCURRENCY = 20
/** Progress lines while creating, every this many nodes. */
const CREATE_LOG_EVERY = 100
const STOP_TIMEOUT_MS = 30_000

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
/** Lets timers and I/O run: a node's start alone may never leave the microtask queue. */
const yieldToLoop = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

type Phase = 'fill' | 'lookups' | 'quiet' | 'stop'

/**
 * Counts every node's `connection:open` events by phase: outbound per node, inbound in
 * total. One listener per node, for the node's life.
 */
class ConnectionTally {
  phase: Phase = 'fill'
  // BOUNDED: one entry per node, per phase (4)
  readonly outbound: Record<Phase, number[]>
  readonly inbound: Record<Phase, number> = { fill: 0, lookups: 0, quiet: 0, stop: 0 }

  constructor (size: number) {
    const zeros = (): number[] => new Array<number>(size).fill(0)
    this.outbound = { fill: zeros(), lookups: zeros(), quiet: zeros(), stop: zeros() }
  }

  observe (index: number, libp2p: Libp2p): void {
    libp2p.addEventListener('connection:open', event => {
      if (event.detail.direction === 'outbound') {
        const counts = this.outbound[this.phase]
        counts[index] = (counts[index] ?? 0) + 1
      } else {
        this.inbound[this.phase]++
      }
    })
  }

  total (phase: Phase): OpenedCount {
    return { total: this.outbound[phase].reduce((a, b) => a + b, 0), inbound: this.inbound[phase] }
  }
}

function connectionCounts (nodes: SystemNode[]): number[] {
  return nodes.map(n => n.libp2p.getConnections().length)
}

/**
 * Runs one system through the scenario: create N nodes (the 3 bootnodes first, then the
 * rest, 20 at a time), wait until every table holds min(16, N − 1) peers (bounded), run
 * the planned lookups one at a time (bounded), sample memory, optionally keep the network
 * running for a quiet window, stop every node (each bounded). CPU is counted over all of
 * it; the table fill is sampled once a second from the first creation; every connection
 * any node opens is counted, by phase.
 */
export async function runSystem (system: System, options: RunOptions): Promise<SystemFigures> {
  const { identities, plan, log } = options
  const size = identities.length
  const threshold = Math.min(16, size - 1)
  const boot = identities.slice(0, BOOTNODES).map(id => dialAddress(system.name, size, id))
  const bootnodesOf = (id: Identity): string[] => boot.filter((_, b) => b !== id.index)
  const tally = new ConnectionTally(size)

  const { waitedMs, ...baseline } = await settledMemorySample()
  log(`${system.name} N=${size}: baseline heap ${(baseline.heapUsed / 2 ** 20).toFixed(1)} MiB, settled in ${(waitedMs / 1000).toFixed(0)} s`)
  const eluStart = performance.eventLoopUtilization()
  const cpuStart = process.cpuUsage()
  const start = performance.now()
  const elapsed = (): number => (performance.now() - start) / 1000

  // the nodes created so far, sampled once a second from the start; BOUNDED: ≤ N
  const live: SystemNode[] = []
  // BOUNDED: one entry a second until the fill wait ends (≤ fill timeout + 2)
  const timeline: Array<[number, number, number]> = []
  const count = (): { reached: number, joined: number } => {
    let reached = 0
    let joined = 0
    for (const node of live) {
      const tableSize = node.tableSize()
      if (tableSize >= threshold) {
        reached++
      }
      if (tableSize > 0) {
        joined++
      }
    }
    return { reached, joined }
  }
  const sample = (): void => {
    const { reached, joined } = count()
    timeline.push([Math.round(elapsed() * 10) / 10, reached, joined])
  }
  sample()
  const sampler = setInterval(sample, SAMPLE_MS)

  const createOne = async (id: Identity): Promise<SystemNode> => {
    const node = await system.create(id, size, bootnodesOf(id), libp2p => { tally.observe(id.index, libp2p) })
    live.push(node)
    if (live.length % CREATE_LOG_EVERY === 0 && live.length < size) {
      log(`${system.name} N=${size}: ${live.length}/${size} nodes created, ${elapsed().toFixed(0)} s`)
    }
    // at N = 1 000 the nodes already running must get their turn between creations
    await yieldToLoop()
    return node
  }
  let nodes: SystemNode[]
  try {
    // create: the bootnodes must listen before the others try them
    const first = await inBatches(identities.slice(0, BOOTNODES), BOOTNODES, createOne)
    const rest = options.arrivalMs > 0
      ? await inBatches(identities.slice(BOOTNODES), 1, async id => {
        const node = await createOne(id)
        await sleep(options.arrivalMs)
        return node
      })
      : await inBatches(identities.slice(BOOTNODES), CREATE_CONCURRENCY, createOne)
    nodes = [...first, ...rest]
  } catch (err) {
    clearInterval(sampler)
    throw err
  }
  const createSeconds = elapsed()
  const cpuCreate = cpuSeconds(cpuStart)
  log(`${system.name} N=${size}: ${size} nodes created in ${createSeconds.toFixed(1)} s`)

  // fill: poll every table, bounded by fillTimeoutMs from the start
  let reached = 0
  let fillSeconds: number | null = null
  const maxPolls = Math.ceil(options.fillTimeoutMs / POLL_MS) + 1
  for (let poll = 0; poll < maxPolls; poll++) {
    reached = count().reached
    const now = elapsed()
    if (reached === size) {
      fillSeconds = now
      break
    }
    if (now * 1000 >= options.fillTimeoutMs) {
      break
    }
    if (poll % 40 === 0) {
      log(`${system.name} N=${size}: ${now.toFixed(0)} s, ${reached}/${size} tables hold ≥ ${threshold}`)
    }
    await sleep(POLL_MS)
  }
  clearInterval(sampler)
  sample()
  tally.phase = 'lookups'
  const sizes = nodes.map(n => n.tableSize())
  const fill = {
    finished: fillSeconds != null,
    seconds: fillSeconds,
    reached,
    empty: sizes.filter(s => s === 0).length,
    joined: sizes.filter(s => s > 0).length,
    tableSizes: spread(sizes),
    timeline
  }
  log(`${system.name} N=${size}: fill ${fill.finished ? `done in ${fillSeconds?.toFixed(1)} s` : `did not finish (${reached}/${size} filled, ${fill.joined}/${size} joined)`}`)
  const openedFill = tally.total('fill')
  const connectionsAfterFill = connectionCounts(nodes)
  const summaryAfterFill = system.summary(nodes)
  const cpuFill = cpuSeconds(cpuStart) - cpuCreate
  const eluFill = performance.eventLoopUtilization(eluStart).utilization
  const afterFill = await memorySample()

  // lookups, one at a time
  const cpuBeforeLookups = process.cpuUsage()
  const eluBeforeLookups = performance.eventLoopUtilization()
  const lookupsStarted = elapsed()
  const each: LookupFigures[] = []
  const lookupsUntil = performance.now() + options.lookupBudgetMs
  for (const lookup of plan) {
    const node = nodes[lookup.source] as SystemNode
    const truth = trueClosest(identities, lookup.source, lookup.key)
    const started = performance.now()
    let figures: LookupFigures
    try {
      if (started > lookupsUntil) {
        throw Object.assign(new Error(`not run: the ${options.lookupBudgetMs / 1000} s for lookups were spent`), { name: 'NotRun' })
      }
      const signal = AbortSignal.timeout(options.lookupTimeoutMs)
      // kad-dht listens on it once per query path (10)
      setMaxListeners(Infinity, signal)
      const outcome = await node.lookup(lookup, signal)
      figures = {
        source: lookup.source,
        target: Buffer.from(lookup.key).toString('hex'),
        ms: performance.now() - started,
        messages: outcome.messages,
        accuracy: accuracyOf(outcome.found, truth),
        returned: outcome.found.length,
        detail: outcome.detail
      }
    } catch (err: any) {
      figures = {
        source: lookup.source,
        target: Buffer.from(lookup.key).toString('hex'),
        ms: err?.name === 'NotRun' ? 0 : performance.now() - started,
        // a failed lookup's requests so far, when the system could count them
        messages: typeof err?.messagesSent === 'number' ? err.messagesSent : 0,
        accuracy: 0,
        returned: 0,
        error: `${String(err?.name ?? 'Error')}: ${String(err?.message ?? err)}`.slice(0, 200),
        detail: {}
      }
    }
    each.push(figures)
    if ((figures.error != null && figures.ms > 0) || each.length % 10 === 0) {
      log(`${system.name} N=${size}: lookup ${each.length}/${plan.length} from ${lookup.source}: ${figures.ms.toFixed(0)} ms, ${figures.messages} requests, accuracy ${figures.accuracy.toFixed(2)}${figures.error != null ? `, ${figures.error}` : ''}`)
    }
  }
  const lookupsEnded = elapsed()
  tally.phase = 'quiet'
  const openedLookups = tally.total('lookups')
  const cpuLookups = cpuSeconds(cpuBeforeLookups)
  const eluLookups = performance.eventLoopUtilization(eluBeforeLookups).utilization
  const ok = each.filter(l => l.error == null)
  const run = each.filter(l => !(l.error?.startsWith('NotRun') ?? false)).length
  log(`${system.name} N=${size}: ${each.length} lookups, ${each.length - ok.length} failed (${each.length - run} not run); ${openedLookups.total} connections opened meanwhile`)

  const afterLookups = await memorySample()
  const connectionsAtEnd = connectionCounts(nodes)
  const summary = system.summary(nodes)

  // quiet: nobody looks anything up; what does the settled network still do?
  let quiet: QuietFigures | null = null
  const cpuBeforeQuiet = process.cpuUsage()
  const quietStarted = elapsed()
  if (options.quietMs > 0) {
    const eluBefore = performance.eventLoopUtilization()
    const trafficBefore = system.traffic?.(nodes)
    const openedBefore = tally.total('quiet').total
    log(`${system.name} N=${size}: quiet window of ${options.quietMs / 1000} s`)
    await sleep(options.quietMs)
    const trafficAfter = system.traffic?.(nodes)
    const minutes = (elapsed() - quietStarted) / 60
    const perNodePerMinute = (n: number): number => n / size / minutes
    quiet = {
      seconds: minutes * 60,
      connectionsPerNodePerMinute: perNodePerMinute(tally.total('quiet').total - openedBefore),
      requestsPerNodePerMinute: trafficBefore == null || trafficAfter == null ? null : perNodePerMinute(trafficAfter.requests - trafficBefore.requests),
      ownConnectionsPerNodePerMinute: trafficBefore == null || trafficAfter == null ? null : perNodePerMinute(trafficAfter.connectionsOpened - trafficBefore.connectionsOpened),
      revalidationDialsPerNodePerMinute: trafficBefore?.revalidationDials == null || trafficAfter?.revalidationDials == null ? null : perNodePerMinute(trafficAfter.revalidationDials - trafficBefore.revalidationDials),
      eventLoop: performance.eventLoopUtilization(eluBefore).utilization,
      cpu: cpuSeconds(cpuBeforeQuiet),
      connectionsPerNodeAtEnd: spread(connectionCounts(nodes)),
      heapPerNode: ((await memorySample()).heapUsed - baseline.heapUsed) / size,
      heapReadAtSeconds: elapsed()
    }
  }
  const cpuQuiet = cpuSeconds(cpuBeforeQuiet)
  const quietSeconds = elapsed() - quietStarted
  tally.phase = 'stop'

  // stop, each bounded
  const cpuBeforeStop = process.cpuUsage()
  const stopped = await inBatches(nodes, 50, async n => within(Promise.resolve(n.libp2p.stop()).then(() => true, () => false), STOP_TIMEOUT_MS, false))
  const cpuStop = cpuSeconds(cpuBeforeStop)
  // as in v1: the quiet window is not part of the run's cost
  const total = cpuSeconds(cpuStart) - cpuQuiet
  const wallSeconds = elapsed() - quietSeconds
  const openedPerNode = tally.outbound.fill

  return {
    system: system.name,
    nodes: size,
    threshold,
    createSeconds,
    fill,
    lookups: {
      count: each.length,
      failed: each.length - ok.length,
      // failed lookups count as accuracy 0
      accuracy: mean(each.map(l => l.accuracy)),
      accuracyCompleted: mean(ok.map(l => l.accuracy)),
      accuracyMinCompleted: ok.length === 0 ? Number.NaN : Math.min(...ok.map(l => l.accuracy)),
      run,
      phaseSeconds: lookupsEnded - lookupsStarted,
      endSeconds: lookupsEnded,
      ms: { median: percentile(ok.map(l => l.ms), 0.5), p95: percentile(ok.map(l => l.ms), 0.95), mean: mean(ok.map(l => l.ms)) },
      messages: { median: percentile(ok.map(l => l.messages), 0.5), p95: percentile(ok.map(l => l.messages), 0.95), mean: mean(ok.map(l => l.messages)) },
      each
    },
    memory: {
      baseline,
      afterFill,
      afterLookups,
      heapPerNode: (afterLookups.heapUsed - baseline.heapUsed) / size,
      rssPerNode: (afterLookups.rss - baseline.rss) / size,
      heapPerNodeAfterFill: (afterFill.heapUsed - baseline.heapUsed) / size,
      rssPerNodeAfterFill: (afterFill.rss - baseline.rss) / size
    },
    cpu: { create: cpuCreate, fill: cpuFill, lookups: cpuLookups, quiet: cpuQuiet, stop: cpuStop, total },
    wallSeconds,
    connections: {
      perNodeAfterFill: spread(connectionsAfterFill),
      perNodeAtEnd: spread(connectionsAtEnd),
      bootnodesAfterFill: connectionsAfterFill.slice(0, BOOTNODES),
      bootnodesAtEnd: connectionsAtEnd.slice(0, BOOTNODES),
      opened: {
        fill: { ...openedFill, perNode: openedFill.total / size, perNodeSpread: spread(openedPerNode) },
        lookups: { ...openedLookups, perLookup: run === 0 ? Number.NaN : openedLookups.total / run }
      }
    },
    eventLoop: { fill: eluFill, lookups: eluLookups },
    quiet,
    stoppedCleanly: stopped.filter(Boolean).length,
    summaryAfterFill,
    summary
  }
}
