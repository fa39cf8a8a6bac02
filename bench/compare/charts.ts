/*
 * The comparison's charts, from its JSON: table fill over time at each N, messages (and
 * connections opened) per lookup against N, lookup time against N; ours beside kad-dht.
 * `compare.bench.ts` writes them next to its JSON after each size; to redraw them from an
 * existing file without rerunning (and print its report again with --report):
 *
 *   npx tsc -p tsconfig.json && node dist/bench/compare/charts.js bench/results/compare.json [--report]
 *
 * Reads version 1 files (no `version` field) too: the charts use only figures v1 has.
 */
import '../../src/polyfill.js'
import { readFile, writeFile } from 'node:fs/promises'
import { isMain } from '../utils.js'
import { printComparison } from './report.js'
import { figure } from './svg.js'
import type { SizeResult } from './report.js'
import type { SystemFigures } from './runner.js'
import type { Axis, Panel, Series } from './svg.js'

/** What compare.bench.ts writes (the fields the charts and report read). */
export interface CompareFile {
  /** 2 since connections opened, the quiet window and the fill sampled from the start; absent in v1. */
  version?: number
  date: string
  revision?: { commit: string, srcModified: boolean }
  lookups: number
  results: SizeResult[]
}

const COLORS = { ours: '#0072B2', kadDht: '#D55E00' }
const NAMES = { ours: 'ours', kadDht: 'kad-dht' } as const
const SYSTEMS = ['ours', 'kadDht'] as const

const finite = (v: number | null | undefined): number => v == null || !Number.isFinite(v) ? Number.NaN : v

/** Where the charts of `jsonPath` go: `x/compare.json` → `x/compare-fill.svg`, … */
export function chartPaths (jsonPath: string): { fill: string, messages: string, lookupP50: string } {
  const stem = jsonPath.replace(/\.json$/, '')
  return { fill: `${stem}-fill.svg`, messages: `${stem}-messages.svg`, lookupP50: `${stem}-lookup-p50.svg` }
}

function fillState (f: SystemFigures): string {
  const last = f.fill.timeline.at(-1)?.[0]
  return f.fill.finished
    ? `${f.system}: all ${f.nodes} full at ${finite(f.fill.seconds).toFixed(1)} s`
    : `${f.system}: ${f.fill.reached}/${f.nodes} full after ${last == null ? '?' : last.toFixed(0)} s`
}

/** Table fill over time, one panel per N: the share of nodes whose table holds min(16, N − 1), and (v2) of those that joined. */
export function fillChart (file: CompareFile): string {
  const panels: Panel[] = file.results.map(result => {
    const series: Series[] = []
    let xMax = 1
    for (const key of SYSTEMS) {
      const f = result[key]
      const timeline = f.fill.timeline
      xMax = Math.max(xMax, ...timeline.map(([t]) => t))
      series.push({ name: `${NAMES[key]}: table full`, color: COLORS[key], points: timeline.map(([t, reached]) => [t, reached / f.nodes]) })
      if (timeline.some(point => point[2] != null)) {
        series.push({ name: `${NAMES[key]}: joined`, color: COLORS[key], dashed: true, points: timeline.map(([t, , joined]) => [t, finite(joined) / f.nodes]) })
      }
    }
    const threshold = result.ours.threshold
    return {
      title: `N = ${result.nodes} (full: ≥ ${threshold} peers)`,
      x: { label: 'seconds since the first node started', min: 0, max: xMax },
      y: { label: 'share of nodes', min: 0, max: 1, ticks: [0, 0.25, 0.5, 0.75, 1], format: v => `${Math.round(v * 100)} %` },
      series,
      notes: [fillState(result.ours), fillState(result.kadDht)]
    }
  })
  return figure('Table fill over time, ours beside kad-dht', panels, { columns: Math.min(2, panels.length) })
}

function sizeAxis (sizes: number[]): Axis {
  const lo = Math.min(...sizes)
  const hi = Math.max(...sizes)
  return { label: 'network size N (log scale)', min: lo / 1.4, max: hi * 1.4, log: true, ticks: sizes }
}

/** Messages per lookup (p50) against N; (v2) connections opened per lookup, dashed. */
export function messagesChart (file: CompareFile): string {
  const sizes = file.results.map(r => r.nodes)
  const series: Series[] = []
  let yMax = 1
  for (const key of SYSTEMS) {
    const points = file.results.map(r => [r.nodes, finite(r[key].lookups.messages.median)] as [number, number])
    series.push({ name: `${NAMES[key]}: requests/lookup (p50)`, color: COLORS[key], markers: true, points })
    const connections = file.results.map(r => [r.nodes, finite(r[key].connections.opened?.lookups.perLookup)] as [number, number])
    if (connections.some(([, c]) => Number.isFinite(c))) {
      series.push({ name: `${NAMES[key]}: connections opened/lookup`, color: COLORS[key], dashed: true, markers: true, points: connections })
    }
  }
  for (const s of series) {
    yMax = Math.max(yMax, ...s.points.map(([, y]) => y).filter(Number.isFinite))
  }
  const panel: Panel = {
    title: '',
    x: sizeAxis(sizes),
    y: { label: 'per lookup', min: 0, max: yMax * 1.1 },
    series
  }
  return figure('Messages (FIND_NODE requests) per lookup against N', [panel], { panelWidth: 640, panelHeight: 360 })
}

/** Lookup time (p50, and p95 dashed) against N, failed lookups labelled. */
export function lookupChart (file: CompareFile): string {
  const sizes = file.results.map(r => r.nodes)
  const series: Series[] = []
  for (const key of SYSTEMS) {
    const failed = file.results.map(r => r[key].lookups.failed > 0 ? `${r[key].lookups.failed}/${r[key].lookups.count} failed` : undefined)
    series.push({ name: `${NAMES[key]}: p50`, color: COLORS[key], markers: true, points: file.results.map(r => [r.nodes, finite(r[key].lookups.ms.median) / 1000]), labels: failed })
    series.push({ name: `${NAMES[key]}: p95`, color: COLORS[key], dashed: true, markers: true, points: file.results.map(r => [r.nodes, finite(r[key].lookups.ms.p95) / 1000]) })
  }
  const values = series.flatMap(s => s.points.map(([, y]) => y)).filter(y => Number.isFinite(y) && y > 0)
  const lo = values.length === 0 ? 0.1 : Math.min(...values)
  const hi = values.length === 0 ? 1 : Math.max(...values)
  // a log scale once the figures span more than a factor 20 (0.1 s beside 30 s)
  const y: Axis = hi / lo > 20
    ? { label: 'lookup time, s (log scale)', min: lo / 1.5, max: hi * 1.5, log: true }
    : { label: 'lookup time, s', min: 0, max: hi * 1.15 }
  const panel: Panel = {
    title: '',
    x: sizeAxis(sizes),
    y,
    series
  }
  return figure('Lookup time against N (completed lookups)', [panel], { panelWidth: 640, panelHeight: 360 })
}

/** Writes the three charts of `file` next to `jsonPath`; returns their paths. */
export async function writeCharts (file: CompareFile, jsonPath: string): Promise<string[]> {
  if (file.results.length === 0) {
    return []
  }
  const paths = chartPaths(jsonPath)
  await writeFile(paths.fill, fillChart(file))
  await writeFile(paths.messages, messagesChart(file))
  await writeFile(paths.lookupP50, lookupChart(file))
  return [paths.fill, paths.messages, paths.lookupP50]
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2)
  const path = args.find(a => !a.startsWith('--')) ?? 'bench/results/compare.json'
  const file = JSON.parse(await readFile(path, 'utf8')) as CompareFile
  if (args.includes('--report')) {
    console.log(`${path}: version ${file.version ?? 1}, ${file.date}, commit ${file.revision?.commit ?? 'unknown'}`)
    printComparison(file.results)
    console.log()
  }
  for (const written of await writeCharts(file, path)) {
    console.log(`wrote ${written}`)
  }
}
