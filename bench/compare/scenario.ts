import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { sha256 } from '@noble/hashes/sha2.js'
import { distanceCompare } from '../../src/table/key.js'
import { seededRandom } from '../../src/table/random.js'
import type { Identity } from './nodes.js'

/** Nodes compared against the truth: the first 16 returned vs the true 16 closest. */
export const ACCURACY_K = 16

/**
 * One lookup of the scenario, the same in both systems.
 *
 * The target: kad-dht's `getClosestPeers(bytes)` hashes its argument (`convertBuffer`:
 * `sha256(bytes)`, checked in @libp2p/kad-dht 16.4.5 `peer-routing/index.js` and
 * `query/manager.js`) and looks up that key; no preimage of a chosen key can be given.
 * So each target is 32 random bytes `preimage`: kad-dht is passed `preimage`, our module
 * the 32-byte key `sha256(preimage)`, and the truth is computed against that same key.
 */
export interface LookupPlan {
  /** The node that runs the lookup. */
  source: number
  /** What kad-dht is given. */
  preimage: Uint8Array
  /** `sha256(preimage)`: what our module is given, and the key the truth is measured to. */
  key: Uint8Array
}

/** `count` lookups over `size` nodes from a PRNG seeded by `size`: the same plan in both systems. */
export function lookupPlan (size: number, count: number): LookupPlan[] {
  const random = seededRandom(0x6b6164 + size)
  return Array.from({ length: count }, () => {
    const source = random.int(size)
    const preimage = random.bytes(32)
    return { source, preimage, key: sha256(preimage) }
  })
}

/**
 * The ids of the `k` nodes closest to `key` among all nodes but `source` (neither system
 * returns the node that runs the lookup).
 */
export function trueClosest (all: Identity[], source: number, key: Uint8Array, k = ACCURACY_K): string[] {
  return all
    .filter(n => n.index !== source)
    .sort((a, b) => distanceCompare(key, a.key, b.key))
    .slice(0, k)
    .map(n => n.peerId.toString())
}

/** The share of `truth` among the first `truth.length` of `found`. */
export function accuracyOf (found: string[], truth: string[]): number {
  const want = new Set(truth)
  return found.slice(0, truth.length).filter(id => want.has(id)).length / Math.max(1, truth.length)
}

/** The `p` quantile (nearest rank) of `values`; `NaN` when there are none. */
export function percentile (values: number[], p: number): number {
  if (values.length === 0) {
    return Number.NaN
  }
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number
}

/** The mean of `values`; `NaN` when there are none. */
export function mean (values: number[]): number {
  return values.length === 0 ? Number.NaN : values.reduce((a, b) => a + b, 0) / values.length
}

let gcFunction: (() => void) | undefined

/**
 * `global.gc` when node runs with `--expose-gc`; otherwise the flag is set at run time and
 * the function taken from a fresh context (V8 installs `gc` on contexts made after).
 */
function gcFn (): () => void {
  if (gcFunction == null) {
    const exposed = (globalThis as { gc?: () => void }).gc
    if (typeof exposed === 'function') {
      gcFunction = exposed
    } else {
      setFlagsFromString('--expose-gc')
      gcFunction = runInNewContext('gc') as () => void
    }
  }
  return gcFunction
}

/** Full garbage collections, with pauses so that finalizers and pending closes run. */
export async function collectGarbage (): Promise<void> {
  const gc = gcFn()
  for (let i = 0; i < 3; i++) {
    gc()
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

/** Heap and RSS after a full GC. */
export interface MemorySample {
  heapUsed: number
  rss: number
}

/** Collects garbage, then samples the heap and RSS. */
export async function memorySample (): Promise<MemorySample> {
  await collectGarbage()
  const usage = process.memoryUsage()
  return { heapUsed: usage.heapUsed, rss: usage.rss }
}

/** How long a stopped node may stay reachable: libp2p's ping handler keeps a 10 s timeout per stream it answered. */
const RESIDUE_MS = 12_000
const SETTLE_STEP_MS = 2000
const SETTLE_LIMIT_MS = 60_000
const SETTLED_BYTES = 1024 * 1024

/**
 * The heap once what earlier runs left behind is gone: at least `RESIDUE_MS`, then until
 * two samples 2 s apart differ by under 1 MiB (at most 60 s). A baseline read straight
 * after the previous system stopped counts that system's dying nodes (about 1 MiB each
 * at N = 50), which are then freed during the next run and lower its figure.
 */
export async function settledMemorySample (): Promise<MemorySample & { waitedMs: number }> {
  const started = performance.now()
  let previous = await memorySample()
  while (performance.now() - started < SETTLE_LIMIT_MS) {
    await new Promise(resolve => setTimeout(resolve, SETTLE_STEP_MS))
    const sample = await memorySample()
    const settled = performance.now() - started >= RESIDUE_MS && Math.abs(previous.heapUsed - sample.heapUsed) < SETTLED_BYTES
    previous = sample
    if (settled) {
      break
    }
  }
  return { ...previous, waitedMs: performance.now() - started }
}

/** Seconds of CPU (user + system) since `since`, or since the process started. */
export function cpuSeconds (since?: NodeJS.CpuUsage): number {
  const usage = process.cpuUsage(since)
  return (usage.user + usage.system) / 1e6
}

/** Min, median and max of `values`. */
export function spread (values: number[]): { min: number, median: number, max: number } {
  return { min: Math.min(...values), median: percentile(values, 0.5), max: Math.max(...values) }
}

/** Adds every counter of `stats` into `total`. */
export function addCounters (total: Record<string, number>, stats: Record<string, number> | undefined): void {
  for (const [name, value] of Object.entries(stats ?? {})) {
    total[name] = (total[name] ?? 0) + value
  }
}

/**
 * `err` (an Error, or one made of it) carrying how many requests a failed lookup had sent,
 * so the report counts them instead of 0.
 */
export function withMessagesSent (err: unknown, messagesSent: number): Error {
  const error = err instanceof Error ? err : new Error(String(err))
  return Object.assign(error, { messagesSent })
}
