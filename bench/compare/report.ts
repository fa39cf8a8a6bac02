import { printTable } from '../utils.js'
import type { SystemFigures } from './runner.js'

/** Both systems at one size. */
export interface SizeResult {
  nodes: number
  fillTimeoutSeconds: number
  ours: SystemFigures
  kadDht: SystemFigures
}

/** How a row compares ours to kad-dht against the issue's target. */
interface Target {
  /** Shown in the table's target column. */
  label: string
  /** Whether the figures meet it (null: cannot tell). */
  met(ours: SystemFigures, kadDht: SystemFigures, ratio: number | null): boolean | null
}

interface Row {
  name: string
  value(f: SystemFigures): number | null
  format?(f: SystemFigures): string
  /** Whether ours / kad-dht is shown; a bound (ours / timeout) when kad-dht never got there. */
  ratio?(ours: SystemFigures, kadDht: SystemFigures): { value: number, bound: boolean } | null
  target?: Target
}

const plainRatio = (row: Pick<Row, 'value'>) => (ours: SystemFigures, kadDht: SystemFigures): { value: number, bound: boolean } | null => {
  const a = row.value(ours)
  const b = row.value(kadDht)
  return a == null || b == null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : { value: a / b, bound: false }
}

const fmt = (n: number | null, digits = 1): string => n == null || !Number.isFinite(n) ? '—' : n.toFixed(digits)
const kb = (bytes: number): number => bytes / 1024

const value = (get: (f: SystemFigures) => number | null): Pick<Row, 'value'> => ({ value: get })

/** A figure that may be missing (JSON of an older version) or not a number (NaN is null in JSON). */
const num = (v: number | null | undefined): number | null => v == null || !Number.isFinite(v) ? null : v
const joinedOf = (f: SystemFigures): number => f.fill.joined ?? f.nodes - f.fill.empty
/** Lowest accuracy among the lookups that returned (from `each`, so v1 files have it too); null if none did. */
const accuracyMin = (f: SystemFigures): number | null => {
  const ok = f.lookups.each.filter(l => l.error == null).map(l => l.accuracy)
  return ok.length === 0 ? null : Math.min(...ok)
}

/** A ratio target of issue 11, marked at N = 200 only (the size it is set for). */
const atMostAt200 = (limit: number): Target => ({
  label: `≤ ${limit}× (N=200)`,
  met: (o, _k, ratio) => o.nodes !== 200 || ratio == null ? null : ratio <= limit
})

const ROWS: Row[] = [
  {
    name: 'tables ≥ min(16, N−1)',
    value: f => f.fill.reached,
    format: f => `${f.fill.reached}/${f.nodes}`,
    target: {
      label: 'ours: all (N≥500)',
      met: (o) => o.nodes < 500 ? null : o.fill.reached === o.nodes
    }
  },
  {
    name: 'joined (table ≥ 1)',
    value: joinedOf,
    format: f => `${joinedOf(f)}/${f.nodes}`,
    target: {
      label: 'ours: all (N≥500)',
      met: (o) => o.nodes < 500 ? null : joinedOf(o) === o.nodes
    }
  },
  {
    name: 'time to fill (s)',
    value: f => f.fill.seconds,
    format: f => f.fill.finished ? fmt(f.fill.seconds) : `DNF>${fmt(f.fill.timeline.at(-1)?.[0] ?? null, 0)}`,
    ratio: (o, k) => {
      if (o.fill.seconds == null) {
        return null
      }
      if (k.fill.seconds != null) {
        return { value: o.fill.seconds / k.fill.seconds, bound: false }
      }
      // kad-dht never filled: its time is above the wait, so the ratio is below this
      const waited = k.fill.timeline.at(-1)?.[0]
      return waited == null ? null : { value: o.fill.seconds / waited, bound: true }
    }
  },
  {
    ...value(f => f.lookups.accuracy),
    name: 'accuracy (first 16 vs true 16; failed = 0)',
    format: f => fmt(f.lookups.accuracy, 3),
    ratio: plainRatio(value(f => f.lookups.accuracy)),
    target: {
      label: 'ours ≥ 0.99 (N=200), ≥ 0.98 (N≥500)',
      met: (o) => o.nodes === 200 ? o.lookups.accuracy >= 0.99 : o.nodes >= 500 ? o.lookups.accuracy >= 0.98 : null
    }
  },
  { ...value(f => f.lookups.accuracyCompleted), name: 'accuracy, completed lookups', format: f => fmt(f.lookups.accuracyCompleted, 3) },
  { ...value(accuracyMin), name: 'accuracy min, completed lookups', format: f => fmt(accuracyMin(f), 3) },
  {
    ...value(f => f.lookups.ms.median),
    name: 'lookup ms p50',
    ratio: plainRatio(value(f => f.lookups.ms.median)),
    target: atMostAt200(0.5)
  },
  { ...value(f => f.lookups.ms.p95), name: 'lookup ms p95', ratio: plainRatio(value(f => f.lookups.ms.p95)) },
  {
    ...value(f => f.lookups.messages.median),
    name: 'messages/lookup p50',
    ratio: plainRatio(value(f => f.lookups.messages.median)),
    target: atMostAt200(0.4)
  },
  { ...value(f => f.lookups.messages.p95), name: 'messages/lookup p95', ratio: plainRatio(value(f => f.lookups.messages.p95)) },
  {
    ...value(f => num(f.connections.opened?.lookups.perLookup)),
    name: 'connections opened/lookup (all nodes)',
    format: f => fmt(num(f.connections.opened?.lookups.perLookup), 1),
    ratio: plainRatio(value(f => num(f.connections.opened?.lookups.perLookup)))
  },
  { ...value(f => f.lookups.failed), name: 'failed lookups (30 s limit, budget)', format: f => `${f.lookups.failed}${f.lookups.run != null && f.lookups.run < f.lookups.count ? ` (${f.lookups.count - f.lookups.run} not run)` : ''}` },
  { ...value(f => num(f.lookups.phaseSeconds)), name: 'lookup phase (s)', format: f => fmt(num(f.lookups.phaseSeconds), 0) },
  {
    ...value(f => kb(f.memory.heapPerNode)),
    name: 'heap KiB/node',
    ratio: plainRatio(value(f => f.memory.heapPerNode)),
    target: atMostAt200(0.6)
  },
  { ...value(f => kb(f.memory.rssPerNode)), name: 'RSS KiB/node', ratio: plainRatio(value(f => f.memory.rssPerNode)) },
  {
    ...value(f => { const heap = num(f.quiet?.heapPerNode); return heap == null ? null : kb(heap) }),
    name: 'heap KiB/node after the quiet window',
    format: f => { const heap = num(f.quiet?.heapPerNode); return heap == null ? '—' : `${fmt(kb(heap), 0)} (at ${fmt(num(f.quiet?.heapReadAtSeconds), 0)} s)` },
    ratio: plainRatio(value(f => num(f.quiet?.heapPerNode)))
  },
  {
    ...value(f => f.cpu.total),
    name: 'CPU s, whole run',
    ratio: plainRatio(value(f => f.cpu.total)),
    target: atMostAt200(0.6)
  },
  { ...value(f => f.cpu.fill + f.cpu.create), name: 'CPU s, start+fill', ratio: plainRatio(value(f => f.cpu.fill + f.cpu.create)) },
  { ...value(f => f.cpu.lookups), name: 'CPU s, lookups', ratio: plainRatio(value(f => f.cpu.lookups)) },
  { ...value(f => f.eventLoop.fill), name: 'event loop busy, start+fill', format: f => fmt(f.eventLoop.fill, 2) },
  { ...value(f => f.eventLoop.lookups), name: 'event loop busy, lookups', format: f => fmt(f.eventLoop.lookups, 2) },
  { ...value(f => num(f.connections.opened?.fill.total)), name: 'connections opened, start+fill', ratio: plainRatio(value(f => num(f.connections.opened?.fill.total))) },
  { ...value(f => num(f.connections.opened?.fill.perNode)), name: 'connections opened/node, start+fill', format: f => fmt(num(f.connections.opened?.fill.perNode), 1) },
  { ...value(f => f.connections.perNodeAfterFill.median), name: 'connections/node p50' },
  { ...value(f => Math.max(...f.connections.bootnodesAfterFill)), name: 'bootnode connections max' },
  { ...value(f => num(f.quiet?.requestsPerNodePerMinute)), name: 'quiet: requests/node/min', format: f => fmt(num(f.quiet?.requestsPerNodePerMinute), 1) },
  { ...value(f => num(f.quiet?.connectionsPerNodePerMinute)), name: 'quiet: connections opened/node/min', format: f => fmt(num(f.quiet?.connectionsPerNodePerMinute), 2) },
  { ...value(f => num(f.quiet?.revalidationDialsPerNodePerMinute)), name: 'quiet: revalidation dials/node/min', format: f => fmt(num(f.quiet?.revalidationDialsPerNodePerMinute), 2) },
  { ...value(f => num(f.quiet?.eventLoop)), name: 'quiet: event loop busy', format: f => fmt(num(f.quiet?.eventLoop), 2) }
]

/** A row's verdict at one size: the ratio cell, and whether the target was met. */
function ratioCell (row: Row, result: SizeResult): { text: string, met: boolean | null } {
  const ratio = row.ratio?.(result.ours, result.kadDht) ?? null
  const met = row.target?.met(result.ours, result.kadDht, ratio?.value ?? null) ?? null
  let text = ratio == null ? '' : `${ratio.bound ? '<' : ''}${ratio.value.toFixed(2)}`
  if (row.target != null && met != null) {
    text = `${text} ${met ? 'met' : 'MISSED'}`.trim()
  }
  return { text, met }
}

function cell (row: Row, f: SystemFigures): string {
  if (row.format != null) {
    return row.format(f)
  }
  const v = row.value(f)
  return v == null || !Number.isFinite(v) ? '—' : (Number.isInteger(v) ? String(v) : fmt(v, Math.abs(v) >= 100 ? 0 : 2))
}

/** A target's verdict at one size, for the JSON. */
export interface Verdict {
  metric: string
  target: string
  nodes: number
  /** null: cannot tell (e.g. no lookup completed). */
  met: boolean | null
  /** ours / kad-dht as text, where the target is a ratio (v1 also put "met"/"MISSED" here). */
  ratio: string
  /** The figures behind the verdict, ours and kad-dht's. (v2) */
  figures?: string
}

const seconds = (ms: number | null): string => ms == null ? '—' : `${(ms / 1000).toFixed(2)} s`
const ratioText = (a: number | null, b: number | null): { ratio: number | null, text: string } => {
  const ratio = a == null || b == null || b === 0 ? null : a / b
  return { ratio, text: ratio == null ? '' : ratio.toFixed(2) }
}

/** How far the fill got: "32/200 filled, 190/200 joined, after 180 s" or "every table at 47.0 s". */
function fillState (f: SystemFigures): string {
  if (f.fill.finished) {
    return `all ${f.nodes} filled at ${fmt(f.fill.seconds)} s`
  }
  return `${f.fill.reached}/${f.nodes} filled, ${joinedOf(f)}/${f.nodes} joined, after ${fmt(f.fill.timeline.at(-1)?.[0] ?? null, 0)} s (did not finish)`
}

/**
 * The targets of issue 11 at the sizes it sets them for, as verdicts: at N = 200 ratios to
 * kad-dht from the same run and absolute bounds; at N = 500 and 1 000 absolute bounds on
 * ours, with kad-dht's state beside them. Sizes not in the run get no verdict.
 */
export function issueVerdicts (results: SizeResult[]): Verdict[] {
  const out: Verdict[] = []
  for (const { nodes, ours: o, kadDht: k } of results) {
    if (nodes === 200) {
      const ratioTarget = (metric: string, limit: number, a: number | null, b: number | null, show: (v: number | null) => string): void => {
        const { ratio, text } = ratioText(a, b)
        out.push({ metric, target: `≤ ${limit}×`, nodes, met: ratio == null ? null : ratio <= limit, ratio: text, figures: `ours ${show(a)}, kad-dht ${show(b)}` })
      }
      ratioTarget('messages/lookup p50', 0.4, num(o.lookups.messages.median), num(k.lookups.messages.median), v => fmt(v, 0))
      ratioTarget('lookup p50', 0.5, num(o.lookups.ms.median), num(k.lookups.ms.median), seconds)
      ratioTarget('CPU, whole run', 0.6, num(o.cpu.total), num(k.cpu.total), v => `${fmt(v, 0)} s`)
      ratioTarget('heap per node', 0.6, num(o.memory.heapPerNode), num(k.memory.heapPerNode), v => `${fmt(v == null ? null : kb(v), 0)} KiB`)
      const slowest = (f: SystemFigures): number => Math.max(0, ...f.lookups.each.map(l => l.ms))
      const notRun = (f: SystemFigures): number => f.lookups.count - (f.lookups.run ?? f.lookups.count)
      const lookupState = (f: SystemFigures): string => `${f.lookups.failed}/${f.lookups.count} failed${notRun(f) > 0 ? ` (${notRun(f)} not run)` : ''}, slowest ${seconds(slowest(f))}`
      out.push({
        metric: 'no lookup past 30 s',
        target: 'every lookup ends within 30 s',
        nodes,
        met: o.lookups.failed === 0 && slowest(o) <= 30_000,
        ratio: '',
        figures: `ours ${lookupState(o)}; kad-dht ${lookupState(k)}`
      })
      out.push({
        metric: 'accuracy',
        target: '≥ 0.99',
        nodes,
        met: o.lookups.accuracy >= 0.99,
        ratio: ratioText(num(o.lookups.accuracy), num(k.lookups.accuracy)).text,
        figures: `ours ${fmt(o.lookups.accuracy, 3)} (min ${fmt(accuracyMin(o), 2)}), kad-dht ${fmt(k.lookups.accuracy, 3)} (min ${fmt(accuracyMin(k), 2)})`
      })
    }
    if (nodes === 500 || nodes === 1000) {
      out.push({
        metric: 'every node joins through 3 bootnodes',
        target: `${nodes}/${nodes} joined`,
        nodes,
        met: joinedOf(o) === nodes,
        ratio: '',
        figures: `ours ${joinedOf(o)}/${nodes} joined; kad-dht ${joinedOf(k)}/${nodes}`
      })
      out.push({
        metric: `every table reaches ${o.threshold}`,
        target: `${nodes}/${nodes} tables`,
        nodes,
        met: o.fill.reached === nodes,
        ratio: '',
        figures: `ours ${fillState(o)}; kad-dht ${fillState(k)}`
      })
      out.push({
        metric: 'accuracy',
        target: '≥ 0.98',
        nodes,
        met: o.lookups.accuracy >= 0.98,
        ratio: ratioText(num(o.lookups.accuracy), num(k.lookups.accuracy)).text,
        figures: `ours ${fmt(o.lookups.accuracy, 3)} (${o.lookups.failed}/${o.lookups.count} failed, min ${fmt(accuracyMin(o), 2)}); kad-dht ${fmt(k.lookups.accuracy, 3)} (${k.lookups.failed}/${k.lookups.count} failed)`
      })
      const end = num(o.lookups.endSeconds)
      out.push({
        metric: 'within 15 minutes',
        target: 'tables full and lookups done ≤ 900 s after the first node started',
        nodes,
        met: end == null ? null : o.fill.finished && end <= 900,
        ratio: '',
        figures: `ours ${o.fill.finished ? `filled at ${fmt(o.fill.seconds, 0)} s` : 'never filled'}, lookups done at ${fmt(end, 0)} s; kad-dht lookups done at ${fmt(num(k.lookups.endSeconds), 0)} s`
      })
    }
  }
  return out
}

/** One line per verdict: "N=200  messages/lookup p50 ≤ 0.4×: met, 0.22× (ours 19, kad-dht 85)". */
export function printVerdicts (verdicts: Verdict[], sizes: number[]): void {
  console.log('Targets of issue 11:')
  for (const v of verdicts) {
    const state = v.met == null ? 'cannot tell' : v.met ? 'met' : 'MISSED'
    const ratio = v.ratio === '' ? '' : `, ${v.ratio}×`
    console.log(`  N=${v.nodes}  ${v.metric} (${v.target}): ${state}${ratio} — ${v.figures ?? ''}`)
  }
  const missing = [200, 500, 1000].filter(n => !sizes.includes(n))
  if (missing.length > 0) {
    console.log(`  (no verdict at N=${missing.join(', ')}: not in this run)`)
  }
}

/**
 * Prints one table: a row per metric, for each size the figures of ours and kad-dht and
 * ours / kad-dht, with each of issue 11's targets marked met or MISSED where it applies;
 * then a verdict line per target. Returns the verdicts.
 */
export function printComparison (results: SizeResult[]): Verdict[] {
  const header = ['metric', ...results.flatMap(r => [`N=${r.nodes} ours`, 'kad-dht', 'ours/kad']), 'target']
  const rows = ROWS.map(row => {
    const cells = results.flatMap(result => {
      const { text } = ratioCell(row, result)
      return [cell(row, result.ours), cell(row, result.kadDht), text]
    })
    return [row.name, ...cells, row.target?.label ?? '']
  })
  printTable(header, rows)
  console.log()
  const verdicts = issueVerdicts(results)
  printVerdicts(verdicts, results.map(r => r.nodes))
  return verdicts
}
