import '../src/polyfill.js'
import { mkdir, writeFile } from 'node:fs/promises'
import { TestNodes } from '../test/utils/libp2p.js'
import { startNetwork } from '../test/utils/network.js'
import { isMain, printTable } from './utils.js'
import type { DiscoveryNode } from '../test/utils/network.js'

const SIZES = (process.env.REFRESH_SIZES ?? '50,100').split(',').map(Number)
const LIMIT_MS = Number(process.env.REFRESH_LIMIT_MS ?? 90_000)

interface FillFigures {
  nodes: number
  bucketRefresh: boolean
  /** ms until every table held min(16, N − 1) nodes, or undefined if it never did */
  fillMs?: number
  /** tables that got there within the limit */
  filled: number
  /** median table size at the end */
  medianSize: number
  findNodesSent: number
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? 0
}

async function measure (size: number, bucketRefresh: boolean): Promise<FillFigures> {
  const nodes = new TestNodes()
  try {
    const started = Date.now()
    // geth's defaults otherwise: the first refresh is the only one within the limit
    const network: DiscoveryNode[] = await startNetwork(nodes, size, {
      bucketRefresh, autoDial: { enabled: false }, revalidateInterval: 10_000, copyNodesInterval: 30_000, requestTimeout: 5000
    })
    const want = Math.min(16, size - 1)
    let fillMs: number | undefined
    while (Date.now() - started < LIMIT_MS) {
      if (network.every(n => n.services.discovery.size >= want)) {
        fillMs = Date.now() - started
        break
      }
      await new Promise(resolve => setTimeout(resolve, 100))
    }
    const sizes = network.map(n => n.services.discovery.size)
    const sent = network.reduce((sum, n) => sum + ((n.services.discovery as unknown as { client: { stats: Record<string, number> } }).client.stats['sent.FIND_NODE'] ?? 0), 0)
    return { nodes: size, bucketRefresh, fillMs, filled: sizes.filter(s => s >= want).length, medianSize: median(sizes), findNodesSent: sent }
  } finally {
    await nodes.stop()
  }
}

/**
 * How much faster tables fill with the per-bucket refresh lookups (beyond geth) than with
 * geth's refresh alone (self lookup + 3 random lookups): N nodes join through one bootnode
 * on the memory transport, no auto-dial; time until every table holds min(16, N − 1).
 */
export async function run (): Promise<void> {
  const results: FillFigures[] = []
  for (const size of SIZES) {
    for (const bucketRefresh of [false, true]) {
      results.push(await measure(size, bucketRefresh))
    }
  }
  printTable(['nodes', 'refresh', 'time to fill every table', 'tables filled', 'median size', 'FIND_NODE sent'], results.map(r => [
    r.nodes, r.bucketRefresh ? 'geth + per-bucket' : 'geth (self + 3 random)',
    r.fillMs == null ? `not within ${LIMIT_MS / 1000} s` : `${(r.fillMs / 1000).toFixed(1)} s`,
    `${r.filled}/${r.nodes}`, r.medianSize, r.findNodesSent
  ]))
  await mkdir('bench/results', { recursive: true })
  await writeFile('bench/results/refresh.json', JSON.stringify({ date: new Date().toISOString(), results }, null, 2) + '\n')
}

if (isMain(import.meta.url)) {
  await run()
}
