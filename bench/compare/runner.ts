import { setMaxListeners } from 'node:events'
import { performance } from 'node:perf_hooks'
import { dialAddress, inBatches, within } from './nodes.js'
import { accuracyOf, cpuSeconds, memorySample, mean, percentile, spread, trueClosest } from './scenario.js'
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
  /** Creates and starts a node that knows the bootnode addresses (the 3 bootnodes but itself). */
  create(identity: Identity, size: number, bootnodes: string[]): Promise<SystemNode>
  /** Counters and per-node figures, read while every node still runs. */
  summary(nodes: SystemNode[]): Record<string, unknown>
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
    tableSizes: { min: number, median: number, max: number }
    /** [seconds since start, nodes at threshold], about once a second. */
    timeline: Array<[number, number]>
  }
  lookups: {
    count: number
    failed: number
    /** Mean over every planned lookup; a failed or unrun lookup counts 0. */
    accuracy: number
    /** Mean over the lookups that returned. */
    accuracyCompleted: number
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
  cpu: { create: number, fill: number, lookups: number, stop: number, total: number }
  wallSeconds: number
  connections: {
    perNodeAfterFill: { min: number, median: number, max: number }
    perNodeAtEnd: { min: number, median: number, max: number }
    bootnodesAfterFill: number[]
    bootnodesAtEnd: number[]
  }
  /** Event loop utilization (0 … 1) while filling and while looking up: 1 is saturated. */
  eventLoop: { fill: number, lookups: number }
  stoppedCleanly: number
  /** `system.summary` when every table was full (or the wait ended), and after the lookups. */
  summaryAfterFill: Record<string, unknown>
  summary: Record<string, unknown>
}

const POLL_MS = 250
// bootnodes are nodes 0, 1 and 2
const BOOTNODES = 3
const CREATE_CONCURRENCY = 20
const STOP_TIMEOUT_MS = 30_000

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

function connectionCounts (nodes: SystemNode[]): number[] {
  return nodes.map(n => n.libp2p.getConnections().length)
}

/**
 * Runs one system through the scenario: create N nodes (the 3 bootnodes first, then the
 * rest, 20 at a time), wait until every table holds min(16, N − 1) peers (bounded), run
 * the planned lookups one at a time, sample memory, stop every node. CPU is counted over
 * all of it.
 */
export async function runSystem (system: System, options: RunOptions): Promise<SystemFigures> {
  const { identities, plan, log } = options
  const size = identities.length
  const threshold = Math.min(16, size - 1)
  const boot = identities.slice(0, BOOTNODES).map(id => dialAddress(system.name, size, id))
  const bootnodesOf = (id: Identity): string[] => boot.filter((_, b) => b !== id.index)

  const baseline = await memorySample()
  const eluStart = performance.eventLoopUtilization()
  const cpuStart = process.cpuUsage()
  const start = performance.now()
  const elapsed = (): number => (performance.now() - start) / 1000

  // create: the bootnodes must listen before the others try them
  const first = await inBatches(identities.slice(0, BOOTNODES), BOOTNODES, async id => system.create(id, size, bootnodesOf(id)))
  const rest = options.arrivalMs > 0
    ? await inBatches(identities.slice(BOOTNODES), 1, async id => {
      const node = await system.create(id, size, bootnodesOf(id))
      await sleep(options.arrivalMs)
      return node
    })
    : await inBatches(identities.slice(BOOTNODES), CREATE_CONCURRENCY, async id => system.create(id, size, bootnodesOf(id)))
  const nodes = [...first, ...rest]
  const createSeconds = elapsed()
  const cpuCreate = cpuSeconds(cpuStart)
  log(`${system.name} N=${size}: ${size} nodes created in ${createSeconds.toFixed(1)} s`)

  // fill: poll every table, bounded by fillTimeoutMs from the start
  const timeline: Array<[number, number]> = []
  let reached = 0
  let fillSeconds: number | null = null
  let lastSample = -1
  const maxPolls = Math.ceil(options.fillTimeoutMs / POLL_MS) + 1
  for (let poll = 0; poll < maxPolls; poll++) {
    reached = nodes.filter(n => n.tableSize() >= threshold).length
    const now = elapsed()
    if (Math.floor(now) > lastSample) {
      lastSample = Math.floor(now)
      timeline.push([Math.round(now * 10) / 10, reached])
    }
    if (reached === size) {
      fillSeconds = now
      timeline.push([Math.round(now * 10) / 10, reached])
      break
    }
    if (now * 1000 >= options.fillTimeoutMs) {
      break
    }
    if (poll % 40 === 0) {
      log(`${system.name} N=${size}: ${elapsed().toFixed(0)} s, ${reached}/${size} tables hold ≥ ${threshold}`)
    }
    await sleep(POLL_MS)
  }
  const sizes = nodes.map(n => n.tableSize())
  const fill = {
    finished: fillSeconds != null,
    seconds: fillSeconds,
    reached,
    empty: sizes.filter(s => s === 0).length,
    tableSizes: spread(sizes),
    timeline
  }
  log(`${system.name} N=${size}: fill ${fill.finished ? `done in ${fillSeconds?.toFixed(1)} s` : `did not finish (${reached}/${size})`}`)
  const connectionsAfterFill = connectionCounts(nodes)
  const summaryAfterFill = system.summary(nodes)
  const cpuFill = cpuSeconds(cpuStart) - cpuCreate
  const eluFill = performance.eventLoopUtilization(eluStart).utilization
  const afterFill = await memorySample()

  // lookups, one at a time
  const cpuBeforeLookups = process.cpuUsage()
  const eluBeforeLookups = performance.eventLoopUtilization()
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
        messages: 0,
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
  const cpuLookups = cpuSeconds(cpuBeforeLookups)
  const eluLookups = performance.eventLoopUtilization(eluBeforeLookups).utilization
  const ok = each.filter(l => l.error == null)
  log(`${system.name} N=${size}: ${each.length} lookups, ${each.length - ok.length} failed`)

  const afterLookups = await memorySample()
  const connectionsAtEnd = connectionCounts(nodes)
  const summary = system.summary(nodes)

  // stop, each bounded
  const cpuBeforeStop = process.cpuUsage()
  const stopped = await inBatches(nodes, 50, async n => within(Promise.resolve(n.libp2p.stop()).then(() => true, () => false), STOP_TIMEOUT_MS, false))
  const cpuStop = cpuSeconds(cpuBeforeStop)
  const total = cpuSeconds(cpuStart)
  const wallSeconds = elapsed()

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
    cpu: { create: cpuCreate, fill: cpuFill, lookups: cpuLookups, stop: cpuStop, total },
    wallSeconds,
    connections: {
      perNodeAfterFill: spread(connectionsAfterFill),
      perNodeAtEnd: spread(connectionsAtEnd),
      bootnodesAfterFill: connectionsAfterFill.slice(0, BOOTNODES),
      bootnodesAtEnd: connectionsAtEnd.slice(0, BOOTNODES)
    },
    eventLoop: { fill: eluFill, lookups: eluLookups },
    stoppedCleanly: stopped.filter(Boolean).length,
    summaryAfterFill,
    summary
  }
}
