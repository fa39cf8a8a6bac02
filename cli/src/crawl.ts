import { resolve } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { CliError, ExitCode, firstLine } from './errors.js'
import { checkOutputFile, writeFileAtomic } from './files.js'
import { createCliNode, stopAll } from './libp2p.js'
import { elapsed, Progress } from './progress.js'
import { deadlineSignal, listenForStop } from './signals.js'
import type { CrawlOptions } from './args.js'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import type { KadDiscovery } from 'libp2p-kad-discovery'

// lookups in flight at once (each asks alpha = 3 nodes at a time)
const CONCURRENCY = 4
// random keys looked up each round, beside every node heard of since the last round
const RANDOM_PER_ROUND = 3
// rounds in a row that found nothing new before the crawl ends
const QUIET_ROUNDS = 2
// the multicodec of /p2p/: addresses are written without it (the id is beside them)
const P2P_CODE = 421
// a bound on memory whatever the network's size; the crawl ends when it is reached
const MAX_NODES = 100_000

/** One node in the crawl's output. */
export interface CrawledNode {
  /** Its peer id. */
  id: string
  /** Its multiaddrs, as heard. */
  addrs: string[]
  /** Whether it answered a lookup's request (otherwise only others spoke of it). */
  answered: boolean
}

/** The file `crawl` writes. */
export interface CrawlOutput {
  /** When the crawl ended, ISO 8601. */
  crawledAt: string
  /** Where it started. */
  bootnodes: string[]
  /** Every node heard of, sorted by id. */
  nodes: CrawledNode[]
}

/**
 * `kad-discovery crawl`: a throwaway node that listens nowhere (so it enters no table and
 * dials no one for itself) walks the network with lookups until rounds stop finding
 * new nodes or the time is up, then writes every node it heard of. Returns the exit code.
 */
export async function runCrawl (options: CrawlOptions): Promise<number> {
  const out = options.out === '-' ? undefined : resolve(options.out)
  if (out != null) {
    await checkOutputFile('--out', out)
  }
  const stop = listenForStop()
  const progress = new Progress({ stream: process.stderr })
  const deadline = deadlineSignal(options.timeout, stop.signal)
  const started = Date.now()
  let crawler: Crawler
  try {
    crawler = await crawl(options, progress, deadline.signal, started)
  } finally {
    deadline.clear()
    progress.done()
    stop.dispose()
  }
  const result = crawler.result(options.bootnodes)
  const answered = result.nodes.filter(n => n.answered).length
  if (answered === 0 && !stop.signal.aborted) {
    throw new CliError(`no node answered within ${elapsed(started)}: is the bootnode running and reachable?`, ExitCode.Failure)
  }
  const json = `${JSON.stringify(result, null, 2)}\n`
  if (out == null) {
    process.stdout.write(json)
  } else {
    await writeFileAtomic(out, json).catch(err => {
      throw new CliError(`--out ${out}: could not write: ${firstLine(err)}`, ExitCode.Failure)
    })
  }
  // the count goes to stdout unless stdout carries the JSON
  const report = `crawled ${result.nodes.length} nodes (${answered} answered) in ${elapsed(started)}${out != null ? `, wrote ${out}` : ''}\n`
  ;(out == null ? process.stderr : process.stdout).write(report)
  return stop.signal.aborted ? ExitCode.Interrupted : ExitCode.Ok
}

async function crawl (options: CrawlOptions, progress: Progress, signal: AbortSignal, started: number): Promise<Crawler> {
  let node
  try {
    node = await createCliNode({
      transport: 'tcp',
      listen: [],
      discovery: { bootnodes: options.bootnodes, autoDial: { enabled: false } }
    })
  } catch (err) {
    throw new CliError(`could not start the crawler: ${firstLine(err)}`, ExitCode.Failure)
  }
  const crawler = new Crawler(node.services.discovery, started, progress)
  crawler.heard(options.bootnodes.map(bootnodeInfo), false)
  try {
    await crawler.run(signal)
  } finally {
    await stopAll([node])
  }
  return crawler
}

function bootnodeInfo (text: string): PeerInfo {
  const ma = multiaddr(text)
  // args.ts checked that the address ends in /p2p/<a valid peer id>
  const id = ma.getComponents().reverse().find(c => c.name === 'p2p')?.value ?? ''
  return { id: peerIdFromString(id), multiaddrs: [ma] }
}

interface Known {
  id: PeerId
  addrs: Set<string>
  answered: boolean
  lookedUp: boolean
}

/**
 * The walk: each round looks up the key of every node heard of since the last round (a
 * live node answers the lookup of its own key, being the closest to it) and a few random
 * keys; a round that learns no new node and no new answer is quiet.
 */
class Crawler {
  private readonly discovery: KadDiscovery
  private readonly started: number
  private readonly progress: Progress
  // BOUNDED: ≤ MAX_NODES entries
  private readonly known = new Map<string, Known>()
  private answered = 0
  private lookups = 0
  private round = 0

  constructor (discovery: KadDiscovery, started: number, progress: Progress) {
    this.discovery = discovery
    this.started = started
    this.progress = progress
  }

  /** Runs rounds until `QUIET_ROUNDS` quiet ones in a row, `MAX_NODES`, or the signal. */
  async run (signal: AbortSignal): Promise<void> {
    let quiet = 0
    // BOUNDED: ends on the signal (the --timeout deadline) at the latest
    while (quiet < QUIET_ROUNDS && !signal.aborted && this.known.size < MAX_NODES) {
      this.round++
      const before = { known: this.known.size, answered: this.answered }
      await this.runRound(signal)
      quiet = this.known.size === before.known && this.answered === before.answered ? quiet + 1 : 0
    }
  }

  private async runRound (signal: AbortSignal): Promise<void> {
    const targets: Array<PeerId | Uint8Array> = []
    for (const entry of this.known.values()) {
      if (!entry.lookedUp) {
        entry.lookedUp = true
        targets.push(entry.id)
      }
    }
    for (let i = 0; i < RANDOM_PER_ROUND; i++) {
      targets.push(crypto.getRandomValues(new Uint8Array(32)))
    }
    // CONCURRENCY workers share the round's targets
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      // BOUNDED: each target is taken once
      for (let target = targets.shift(); target != null && !signal.aborted; target = targets.shift()) {
        await this.lookup(target, signal)
      }
    }))
  }

  private async lookup (target: PeerId | Uint8Array, signal: AbortSignal): Promise<void> {
    try {
      this.heard(await this.discovery.lookup(target, { signal }), true)
    } catch {
      // a failed lookup (every node asked failed, or time is up) teaches nothing
    }
    this.lookups++
    // nodes the crawler's table heard of in answers, whether or not a result held them
    this.heard(this.discovery.nodes(), false)
    this.progress.update(`${elapsed(this.started).padStart(6)}  round ${this.round}: ${this.known.size} nodes heard of, ` +
      `${this.answered} answered, ${this.lookups} lookups`)
  }

  /** Records nodes; `answered` when they came back from a lookup (every one of those answered). */
  heard (peers: PeerInfo[], answered: boolean): void {
    for (const peer of peers) {
      const key = peer.id.toString()
      let entry = this.known.get(key)
      if (entry == null) {
        if (this.known.size >= MAX_NODES) {
          return
        }
        entry = { id: peer.id, addrs: new Set(), answered: false, lookedUp: false }
        this.known.set(key, entry)
      }
      for (const ma of peer.multiaddrs) {
        entry.addrs.add(ma.decapsulateCode(P2P_CODE).toString())
      }
      if (answered && !entry.answered) {
        entry.answered = true
        this.answered++
      }
    }
  }

  /** What the crawl found, ready to write. */
  result (bootnodes: string[]): CrawlOutput {
    const nodes = [...this.known.entries()]
      .sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0)
      .map(([id, entry]) => ({ id, addrs: [...entry.addrs].sort(), answered: entry.answered }))
    return { crawledAt: new Date().toISOString(), bootnodes, nodes }
  }
}
