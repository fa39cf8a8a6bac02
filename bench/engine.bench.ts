import '../src/polyfill.js'
import { mkdir, writeFile } from 'node:fs/promises'
import { lookup } from '../src/service/iterative-lookup.js'
import { seededRandom } from '../src/table/random.js'
import { SimulatedNetwork } from '../test/utils/simulation.js'
import { isMain, printTable } from './utils.js'

const SIZES = (process.env.ENGINE_SIZES ?? '1000,10000,100000').split(',').map(Number)
const LOOKUPS = 50

/** Figures for one network size. */
interface EngineFigures {
  nodes: number
  lookups: number
  messagesPerLookup: { median: number, p95: number }
  roundsPerLookup: { median: number, max: number }
  accuracy: number
  msPerLookup: number
  setupMs: number
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0
}

/**
 * The table and lookup alone over a simulated network (no libp2p; an in-memory query
 * function answering from each node's real `Table`, the same code the FIND_NODE server
 * runs): messages and rounds per lookup, accuracy against the true 16 closest, and time
 * per lookup, at growing N. Cost should grow with log N.
 */
export async function run (): Promise<void> {
  const results: EngineFigures[] = []
  for (const size of SIZES) {
    const started = performance.now()
    const network = new SimulatedNetwork(size, size)
    const setupMs = performance.now() - started
    const random = seededRandom(size + 1)
    const messages: number[] = []
    const rounds: number[] = []
    let accuracy = 0
    let elapsed = 0
    for (let i = 0; i < LOOKUPS; i++) {
      const source = random.int(size)
      const table = network.tableOf(source)
      const target = random.bytes(32)
      const t0 = performance.now()
      const result = await lookup({ table, alpha: 3, bucketSize: 16, query: network.query }, target)
      elapsed += performance.now() - t0
      messages.push(result.queries)
      rounds.push(result.rounds)
      const truth = new Set(network.trueClosest(target, 16).map(n => n.hex))
      accuracy += result.closest.filter(n => truth.has(Buffer.from(n.key).toString('hex'))).length / 16
    }
    results.push({
      nodes: size,
      lookups: LOOKUPS,
      messagesPerLookup: { median: percentile(messages, 0.5), p95: percentile(messages, 0.95) },
      roundsPerLookup: { median: percentile(rounds, 0.5), max: Math.max(...rounds) },
      accuracy: accuracy / LOOKUPS,
      msPerLookup: elapsed / LOOKUPS,
      setupMs
    })
  }
  printTable(['nodes', 'log2 N', 'messages/lookup p50', 'p95', 'rounds p50', 'max', 'accuracy', 'ms/lookup'], results.map(r => [
    r.nodes, Math.log2(r.nodes).toFixed(1), r.messagesPerLookup.median, r.messagesPerLookup.p95,
    r.roundsPerLookup.median, r.roundsPerLookup.max, r.accuracy.toFixed(3), r.msPerLookup
  ]))
  await mkdir('bench/results', { recursive: true })
  await writeFile('bench/results/engine.json', JSON.stringify({ date: new Date().toISOString(), results }, null, 2) + '\n')
}

if (isMain(import.meta.url)) {
  await run()
}
