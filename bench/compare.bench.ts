/*
 * Side by side: this module and @libp2p/kad-dht (server mode) in one process run, the
 * same scenario one system after the other (never at once, a full GC between).
 *
 *   npx tsc -p tsconfig.json && node --expose-gc --max-old-space-size=8192 --max-semi-space-size=64 dist/bench/compare.bench.js
 *
 * (`npm run bench` runs it too, with every other bench; without --expose-gc the bench
 * turns GC on itself. With hundreds of libp2p nodes in one process, V8's default young
 * generation made scavenges about a third of the CPU of either system; 64 MiB semi-spaces
 * cut that by a third, for both alike.) Settings, by environment:
 *   COMPARE_SIZES=50,200       network sizes (default 50,200, plus 500 with BENCH_N500=1);
 *                              `COMPARE_SIZES=all` is 50,200,500,1000, issue 11's sizes
 *                              (over an hour on 2 cores; 1 000 libp2p nodes need a few GiB
 *                              of heap: keep --max-old-space-size=8192)
 *   COMPARE_LOOKUPS=50         lookups per system and size
 *   COMPARE_FILL_TIMEOUT=180   seconds to wait for every table to fill (default
 *                              min(600, 60 + 0.6 N): 90, 180, 360, 600 s at 50 … 1 000, so
 *                              that fill and lookup budget end within 15 min at 1 000)
 *   COMPARE_LOOKUP_BUDGET=300  seconds for all lookups of one system (each ≤ 30 s); those
 *                              not started by then are not run and count as failed
 *   COMPARE_QUIET=30           seconds of a quiet window after the lookups (nobody looks
 *                              anything up): requests and connections per node per minute
 *                              of the settled network (default 30 at N ≤ 200, none above;
 *                              0: off)
 *   COMPARE_ARRIVAL_MS=0       ms between node starts, one at a time (default 0: 20 at a
 *                              time, as fast as they start)
 *   COMPARE_ORDER=ours,kad-dht which system runs first at each size (default ours: RSS
 *                              that the first leaves behind and code the first warms
 *                              both favour the second, here kad-dht)
 *   COMPARE_WARMUP=0           skip the warm-up (both systems at N = 12, discarded,
 *                              before the first size: compiles the code both share, so
 *                              that neither the first system's heap, RSS nor CPU pays it)
 *   COMPARE_OUT=path           where the raw figures go (default bench/results/compare.json);
 *                              the SVG charts go beside it (compare-fill.svg, …; redraw them
 *                              with `node dist/bench/compare/charts.js <json>`)
 *
 * The scenario (bench/compare/): N nodes on the memory transport with plaintext, yamux,
 * identify, ping and libp2p's default connection manager; node i's Ed25519 key derived
 * from a fixed seed, so it has the same peer id in both systems; nodes 0, 1, 2 are the
 * bootnodes every other node is given; the same lookups (source node and target from a
 * PRNG seeded by N). Measured for each: time until every table holds min(16, N − 1)
 * peers, accuracy of the first 16 returned against the true 16 closest, lookup wall
 * time, FIND_NODE requests per lookup, libp2p connections opened (at the dialing side)
 * per lookup and during the fill, heap and RSS per node (after a full GC, minus the
 * figures before the first node), CPU (user + system) over the system's whole run, event
 * loop utilisation per phase, the table fill once a second. At N ≥ 500 kad-dht may never
 * fill: the wait ends at the fill timeout, the lookups at their budget, and the report
 * says how many of its tables filled and how many of its nodes joined.
 */
import '../src/polyfill.js'
import './logger-colors.js'
import { execFileSync } from 'node:child_process'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, loadavg } from 'node:os'
import { dirname } from 'node:path'
import { getHeapStatistics } from 'node:v8'
import { writeCharts } from './compare/charts.js'
import { kadDht } from './compare/kad-dht.js'
import { identities } from './compare/nodes.js'
import { ours } from './compare/ours.js'
import { printComparison } from './compare/report.js'
import { runSystem } from './compare/runner.js'
import { collectGarbage, lookupPlan } from './compare/scenario.js'
import { isMain } from './utils.js'
import type { SizeResult, Verdict } from './compare/report.js'
import type { System, SystemFigures } from './compare/runner.js'

const LOOKUP_TIMEOUT_MS = 30_000
const WARMUP_SIZE = 12
/** The JSON's layout: 2 added connections opened, the quiet window, `fill.joined`, … */
const FILE_VERSION = 2
/** Issue 11's sizes, `COMPARE_SIZES=all`. */
const ALL_SIZES = [50, 200, 500, 1000]
/** The quiet window's default: 30 s at N ≤ 200, none above. */
const QUIET_DEFAULT = { seconds: 30, maxNodes: 200 }
/** Heap one node of either system may hold, with margin (measured: ≤ 2.3 MiB at N = 200). */
const HEAP_PER_NODE_BYTES = 4 * 1024 * 1024

/** Lets closing connections settle, then collects garbage, before the next system runs. */
async function settle (): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 2000))
  await collectGarbage()
}

function sizes (): number[] {
  const fromEnv = process.env.COMPARE_SIZES
  const list = fromEnv === 'all'
    ? ALL_SIZES
    : fromEnv != null && fromEnv !== ''
      ? fromEnv.split(',').map(Number)
      : [50, 200, ...(process.env.BENCH_N500 === '1' ? [500] : [])]
  if (list.some(n => !Number.isInteger(n) || n < 4 || n > 2000)) {
    throw new Error(`COMPARE_SIZES must be integers from 4 to 2000, got ${fromEnv}`)
  }
  return list
}

function positiveInt (name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw == null || raw === '') {
    return fallback
  }
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 1) {
    throw new Error(`${name} must be a positive integer, got ${raw}`)
  }
  return n
}

/** Seconds of quiet window at `size`: COMPARE_QUIET (0: none), by default 30 s at N ≤ 200. */
function quietSeconds (size: number): number {
  const raw = process.env.COMPARE_QUIET
  if (raw === '0') {
    return 0
  }
  return positiveInt('COMPARE_QUIET', size <= QUIET_DEFAULT.maxNodes ? QUIET_DEFAULT.seconds : 0)
}

/** Warns when the heap limit looks too small for the largest size (both systems never run at once). */
function checkHeap (largest: number): void {
  const limit = getHeapStatistics().heap_size_limit
  const need = largest * HEAP_PER_NODE_BYTES
  if (limit < need) {
    console.log(`warning: heap limit ${(limit / 2 ** 30).toFixed(1)} GiB, N=${largest} may need ${(need / 2 ** 30).toFixed(1)} GiB: run node with --max-old-space-size=8192`)
  }
}

function uptime (): string {
  try {
    return execFileSync('uptime', { encoding: 'utf8' }).trim()
  } catch {
    return `load average: ${loadavg().map(l => l.toFixed(2)).join(', ')}`
  }
}

/**
 * HEAD and whether src/ differed from it (others work in the same tree), read when the run
 * starts; dist/ is whatever was last built from that tree.
 */
function revision (): { commit: string, srcModified: boolean } {
  try {
    const commit = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim()
    const status = execFileSync('git', ['status', '--porcelain', '--', 'src'], { encoding: 'utf8' }).trim()
    return { commit, srcModified: status !== '' }
  } catch {
    return { commit: 'unknown', srcModified: false }
  }
}

function order (): System[] {
  const names = (process.env.COMPARE_ORDER ?? 'ours,kad-dht').split(',')
  if (names.length !== 2 || !names.includes('ours') || !names.includes('kad-dht')) {
    throw new Error('COMPARE_ORDER must be "ours,kad-dht" or "kad-dht,ours"')
  }
  return names.map(name => name === 'ours' ? ours() : kadDht())
}

const log = (line: string): void => { console.log(`  [${new Date().toISOString().slice(11, 19)}] ${line}`) }

/**
 * Runs the comparison at every size, prints one table (ours, kad-dht, ours / kad-dht,
 * targets marked) and writes the raw figures to bench/results/compare.json.
 */
export async function run (): Promise<void> {
  const lookups = positiveInt('COMPARE_LOOKUPS', 50)
  const lookupBudgetMs = positiveInt('COMPARE_LOOKUP_BUDGET', 300) * 1000
  const arrivalMs = process.env.COMPARE_ARRIVAL_MS == null || process.env.COMPARE_ARRIVAL_MS === '0' ? 0 : positiveInt('COMPARE_ARRIVAL_MS', 0)
  const out = process.env.COMPARE_OUT ?? 'bench/results/compare.json'
  const loadBefore = uptime()
  console.log(`machine: ${loadBefore}`)
  checkHeap(Math.max(...sizes()))
  const started = Date.now()
  // the code measured is what was loaded now, not what the tree holds at the end
  const measured = revision()
  if (process.env.COMPARE_WARMUP !== '0') {
    const ids = await identities(WARMUP_SIZE)
    for (const system of order()) {
      await runSystem(system, { identities: ids, plan: lookupPlan(WARMUP_SIZE, 3), fillTimeoutMs: 20_000, lookupTimeoutMs: 10_000, lookupBudgetMs: 30_000, arrivalMs: 0, quietMs: 0, log: () => {} })
      await settle()
    }
    log(`warm-up done (both systems at N=${WARMUP_SIZE}, discarded)`)
  }
  const results: SizeResult[] = []
  const save = async (complete: boolean, verdicts: Verdict[] = []): Promise<void> => {
    await mkdir(dirname(out), { recursive: true })
    const file = {
      version: FILE_VERSION,
      date: new Date().toISOString(),
      complete,
      node: process.version,
      revision: measured,
      cpus: cpus().length,
      uptimeBefore: loadBefore,
      uptimeAfter: uptime(),
      lookups,
      lookupBudgetSeconds: lookupBudgetMs / 1000,
      arrivalMs,
      order: order().map(s => s.name),
      verdicts,
      results
    }
    await writeFile(out, JSON.stringify(file, null, 2) + '\n')
    await writeCharts(file, out)
  }
  for (const size of sizes()) {
    const fillTimeoutSeconds = positiveInt('COMPARE_FILL_TIMEOUT', Math.min(600, Math.round(60 + 0.6 * size)))
    const quietMs = quietSeconds(size) * 1000
    const ids = await identities(size)
    const plan = lookupPlan(size, lookups)
    const figures: Partial<Record<System['name'], SystemFigures>> = {}
    for (const system of order()) {
      log(`${system.name} N=${size}: starting (fill wait ≤ ${fillTimeoutSeconds} s, ${lookups} lookups${quietMs > 0 ? `, ${quietMs / 1000} s quiet` : ''}); ${uptime()}`)
      figures[system.name] = await runSystem(system, {
        identities: ids,
        plan,
        fillTimeoutMs: fillTimeoutSeconds * 1000,
        lookupTimeoutMs: LOOKUP_TIMEOUT_MS,
        lookupBudgetMs,
        arrivalMs,
        quietMs,
        log
      })
      await settle()
    }
    results.push({ nodes: size, fillTimeoutSeconds, ours: figures.ours as SystemFigures, kadDht: figures['kad-dht'] as SystemFigures })
    // the figures so far survive a crash at a larger size
    await save(false)
  }
  console.log()
  const verdicts = printComparison(results)
  console.log()
  console.log(`machine after: ${uptime()}`)
  console.log(`run took ${((Date.now() - started) / 1000).toFixed(0)} s; raw figures in ${out}, charts beside it`)
  await save(true, verdicts)
}

if (isMain(import.meta.url)) {
  await run()
  // libp2p leaves timers (e.g. kad-dht's adaptive timeouts) that need not hold the process
  process.exit(0)
}
