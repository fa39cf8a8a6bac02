import type { DemoOptions } from './args.js'

/** Smallest, median and largest of some counts. */
export interface Spread {
  /** The smallest. */
  min: number
  /** The middle one (the lower middle of an even count). */
  median: number
  /** The largest. */
  max: number
}

/** The spread of `values` (all 0 when there are none); the median of an even count is the lower middle. */
export function spread (values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b)
  return {
    min: sorted[0] ?? 0,
    median: sorted[Math.floor((sorted.length - 1) / 2)] ?? 0,
    max: sorted[sorted.length - 1] ?? 0
  }
}

/** How one demo lookup did. */
export interface LookupScore {
  /** The share of the true closest nodes it found, 0 to 1. */
  accuracy: number
  /** How long it took. */
  ms: number
  /** Whether it returned any node (it did not fail or time out). */
  answered: boolean
}

/** What the demo measured. */
export interface DemoResult {
  /** What the demo was asked to do. */
  options: DemoOptions
  /** min(16, N − 1): a full table, and the auto-dialer's goal. */
  target: number
  /** ms to start every node. */
  startup: number
  /** ms after the start until every node's table had held `target` nodes; absent when some never did. */
  fullTablesAfter?: number
  /** ms after the start until every node had had `target` connected peers; absent when some never did. */
  connectedAfter?: number
  /** ms after the start when the demo stopped watching for those. */
  watched: number
  /** Each lookup that ran, in the order they ended. */
  lookups: LookupScore[]
  /** Table size of each node at the end, the bootnode first. */
  sizes: number[]
  /** Distinct connected peers of each node at the end. */
  connections: number[]
}

/** The summary's lines, and whether discovery worked at all (the exit code follows it). */
export function summaryLines (result: DemoResult): { lines: string[], worked: boolean } {
  const { options, target, sizes, connections } = result
  const tables = spread(sizes)
  const conns = spread(connections)
  const lines = [
    `summary: ${options.nodes} nodes on the ${options.transport} transport, joined through one bootnode`,
    `  started       ${options.nodes} nodes in ${seconds(result.startup)}`,
    `  full tables   ${reached(result.fullTablesAfter, result.watched, `every table held ${count(target, 'node')}`, `${sizes.filter(s => s >= target).length}/${sizes.length} tables hold ${count(target, 'node')} now`)}`,
    `  connected     ${reached(result.connectedAfter, result.watched, `every node had ${count(target, 'connection')}`, `${connections.filter(c => c >= target).length}/${connections.length} nodes have ${count(target, 'connection')} now`)}`,
    `  tables        min ${tables.min}, median ${tables.median}, max ${tables.max} nodes`,
    `  connections   min ${conns.min}, median ${conns.median}, max ${conns.max} distinct peers`,
    `  lookups       ${lookupLine(result.lookups, options.lookups, target)}`
  ]
  const worked = discovered(sizes) > 0
  const missed = missedTargets(result)
  for (const line of missed) {
    lines.push(`  missed        ${line}`)
  }
  lines.push(`  result        ${!worked ? 'discovery did not work: no node learned of a peer it was not given' : missed.length === 0 ? 'ok, every target met' : `ok, ${count(missed.length, 'target')} missed (above)`}`)
  return { lines, worked }
}

/** The demo's targets: every lookup answered, accuracy and median time of lookups. */
export const DEMO_TARGETS = { accuracy: 0.99, medianLookupMs: 300 }

/** Each target the demo missed, and by how much: one line each. */
export function missedTargets (result: DemoResult): string[] {
  const { options, target, lookups } = result
  const missed: string[] = []
  if (result.fullTablesAfter == null) {
    missed.push(`full tables: ${result.sizes.filter(s => s >= target).length}/${result.sizes.length} tables hold ${count(target, 'node')} after ${seconds(result.watched)}`)
  }
  if (result.connectedAfter == null) {
    missed.push(`connected: ${result.connections.filter(c => c >= target).length}/${result.connections.length} nodes have ${count(target, 'connection')} after ${seconds(result.watched)}`)
  }
  if (options.lookups === 0) {
    return missed
  }
  const answered = lookups.filter(l => l.answered).length
  if (answered < options.lookups) {
    missed.push(`lookups answered: ${answered}/${options.lookups}, ${options.lookups - answered} short`)
  }
  if (lookups.length > 0) {
    const mean = lookups.reduce((sum, s) => sum + s.accuracy, 0) / lookups.length
    if (mean < DEMO_TARGETS.accuracy) {
      missed.push(`accuracy: ${percent(mean)} < ${percent(DEMO_TARGETS.accuracy)}, ${((DEMO_TARGETS.accuracy - mean) * 100).toFixed(1)} points short`)
    }
    const median = spread(lookups.map(s => s.ms)).median
    if (median > DEMO_TARGETS.medianLookupMs) {
      missed.push(`median lookup: ${median} ms > ${DEMO_TARGETS.medianLookupMs} ms, ${median - DEMO_TARGETS.medianLookupMs} ms over`)
    }
  }
  return missed
}

/**
 * Table entries nobody configured: anything in the bootnode's table (it was given no
 * one), and whatever each other node holds beyond the bootnode it was given.
 */
function discovered (sizes: number[]): number {
  const [boot = 0, ...rest] = sizes
  return boot + rest.reduce((sum, size) => sum + Math.max(0, size - 1), 0)
}

function reached (after: number | undefined, watched: number, goal: string, missed: string): string {
  return after != null ? `${goal} ${seconds(after)} after the start` : `not reached within ${seconds(watched)}: ${missed}`
}

function lookupLine (scores: LookupScore[], asked: number, k: number): string {
  if (asked === 0) {
    return 'none asked (--lookups 0)'
  }
  if (scores.length === 0) {
    return 'none ran'
  }
  const mean = scores.reduce((sum, s) => sum + s.accuracy, 0) / scores.length
  const worst = Math.min(...scores.map(s => s.accuracy))
  const answered = scores.filter(s => s.answered).length
  const ran = scores.length < asked ? ` (${scores.length} of ${asked} ran in time)` : ''
  return `${answered}/${scores.length} answered${ran}, accuracy ${percent(mean)} of the true ${k} closest ` +
    `(worst ${percent(worst)}), median ${spread(scores.map(s => s.ms)).median} ms`
}

/** `n` and the word, plural unless `n` is 1: the demo's target is 1 with two nodes. */
export function count (n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

function seconds (ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`
}

function percent (share: number): string {
  return `${(share * 100).toFixed(1)}%`
}
