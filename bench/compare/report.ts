import { printTable } from '../utils.js'
import type { SystemFigures } from './runner.js'

/** Both systems at one size. */
export interface SizeResult {
  nodes: number
  fillTimeoutSeconds: number
  ours: SystemFigures
  kadDht: SystemFigures
}

/** How a row compares ours to kad-dht against the target. */
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

const atMost = (limit: number): Target => ({
  label: `≤ ${limit}×`,
  met: (_o, _k, ratio) => ratio == null ? null : ratio <= limit
})

const fmt = (n: number | null, digits = 1): string => n == null || !Number.isFinite(n) ? '—' : n.toFixed(digits)
const kb = (bytes: number): number => bytes / 1024

const value = (get: (f: SystemFigures) => number | null): Pick<Row, 'value'> => ({ value: get })

const ROWS: Row[] = [
  {
    name: 'tables ≥ min(16, N−1)',
    value: f => f.fill.reached,
    format: f => `${f.fill.reached}/${f.nodes}`,
    target: {
      label: 'ours: all join (N=500)',
      met: (o) => o.nodes < 500 ? null : o.fill.reached === o.nodes
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
    },
    target: atMost(0.5)
  },
  {
    ...value(f => f.lookups.accuracy),
    name: 'accuracy (first 16 vs true 16; failed = 0)',
    format: f => fmt(f.lookups.accuracy, 3),
    ratio: plainRatio(value(f => f.lookups.accuracy)),
    target: { label: 'ours ≥ 0.99 (N=200)', met: (o) => o.nodes !== 200 ? null : o.lookups.accuracy >= 0.99 }
  },
  { ...value(f => f.lookups.accuracyCompleted), name: 'accuracy, completed lookups', format: f => fmt(f.lookups.accuracyCompleted, 3) },
  { ...value(f => f.lookups.ms.median), name: 'lookup ms p50', ratio: plainRatio(value(f => f.lookups.ms.median)) },
  { ...value(f => f.lookups.ms.p95), name: 'lookup ms p95', ratio: plainRatio(value(f => f.lookups.ms.p95)) },
  {
    ...value(f => f.lookups.messages.median),
    name: 'messages/lookup p50',
    ratio: plainRatio(value(f => f.lookups.messages.median)),
    target: atMost(0.5)
  },
  { ...value(f => f.lookups.messages.p95), name: 'messages/lookup p95', ratio: plainRatio(value(f => f.lookups.messages.p95)) },
  { ...value(f => f.lookups.failed), name: 'failed lookups' },
  {
    ...value(f => kb(f.memory.heapPerNode)),
    name: 'heap KiB/node',
    ratio: plainRatio(value(f => f.memory.heapPerNode)),
    target: atMost(0.7)
  },
  { ...value(f => kb(f.memory.rssPerNode)), name: 'RSS KiB/node', ratio: plainRatio(value(f => f.memory.rssPerNode)) },
  {
    ...value(f => f.cpu.total),
    name: 'CPU s, whole run',
    ratio: plainRatio(value(f => f.cpu.total)),
    target: atMost(0.5)
  },
  { ...value(f => f.cpu.fill + f.cpu.create), name: 'CPU s, start+fill', ratio: plainRatio(value(f => f.cpu.fill + f.cpu.create)) },
  { ...value(f => f.cpu.lookups), name: 'CPU s, lookups', ratio: plainRatio(value(f => f.cpu.lookups)) },
  { ...value(f => f.eventLoop.fill), name: 'event loop busy, fill', format: f => fmt(f.eventLoop.fill, 2) },
  { ...value(f => f.eventLoop.lookups), name: 'event loop busy, lookups', format: f => fmt(f.eventLoop.lookups, 2) },
  { ...value(f => f.connections.perNodeAfterFill.median), name: 'connections/node p50' },
  { ...value(f => Math.max(...f.connections.bootnodesAfterFill)), name: 'bootnode connections max' }
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
  met: boolean | null
  ratio: string
}

/**
 * Prints one table: a row per metric, for each size the figures of ours and kad-dht and
 * ours / kad-dht, with each target marked met or MISSED. Returns the verdicts.
 */
export function printComparison (results: SizeResult[]): Verdict[] {
  const header = ['metric', ...results.flatMap(r => [`N=${r.nodes} ours`, 'kad-dht', 'ours/kad']), 'target']
  const verdicts: Verdict[] = []
  const rows = ROWS.map(row => {
    const cells = results.flatMap(result => {
      const { text, met } = ratioCell(row, result)
      if (row.target != null) {
        verdicts.push({ metric: row.name, target: row.target.label, nodes: result.nodes, met, ratio: text })
      }
      return [cell(row, result.ours), cell(row, result.kadDht), text]
    })
    return [row.name, ...cells, row.target?.label ?? '']
  })
  printTable(header, rows)
  return verdicts
}
