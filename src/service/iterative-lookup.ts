import { raceSignal } from 'race-signal'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { keyOf, keysEqual } from '../table/key.js'
import { NodesByDistance } from '../table/nodes-by-distance.js'
import type { Table } from '../table/table.js'
import type { AbortOptions, PeerId, PeerInfo } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A node as a lookup handles it: an id, its key and where to reach it. */
export interface LookupNode {
  /** Its peer id. */
  id: PeerId
  /** `keyOf(id)`. */
  key: Uint8Array
  /** Where it can be reached. */
  multiaddrs: Multiaddr[]
}

/**
 * Asks `node` for the nodes it knows closest to `target` (a FIND_NODE request). Rejects
 * when the request fails; the caller does the failure counting.
 */
export type QueryFunction = (node: LookupNode, target: Uint8Array, options: AbortOptions) => Promise<PeerInfo[]>

/** What a lookup needs. */
export interface LookupInit {
  /** The local table: seeds the result and takes every node found. */
  table: Table
  /** Requests in flight at once (geth `alpha`). */
  alpha: number
  /**
   * Read before each request: how many may be in flight now, at most `alpha` (at least
   * 1). `alpha` when absent.
   */
  concurrency?(): number
  /** Result size (geth `bucketSize`). */
  bucketSize: number
  /** The FIND_NODE request. */
  query: QueryFunction
}

/** What a lookup found and what it cost. */
export interface LookupResult {
  /** Up to `bucketSize` nodes closest to the target, closest first: all of them answered. */
  closest: LookupNode[]
  /** FIND_NODE requests sent. */
  queries: number
  /** Requests that failed (no answer). */
  failures: number
  /** Requests answered with no node at all (geth counts them against the node, too). */
  empty: number
  /** Rounds: the longest chain of requests that each waited on an earlier answer. */
  rounds: number
  /** Whether `stop` ended the lookup before it was done: the answer is what it had. */
  stopped: boolean
  /** The keys of every node asked: the buckets the lookup passed through. */
  asked: Uint8Array[]
}

interface Candidate extends LookupNode {
  // the round in which this node was learned: the table seeds are round 0
  round: number
  // undefined until asked; then whether it answered
  answered?: boolean
}

/**
 * A lookup stops asking new nodes after this many failed requests per `bucketSize`
 * (16 with the default k): each failure hands its place among the closest to the next
 * node, and without a bound a lookup among dead or overloaded nodes would ask on and on.
 */
export const MAX_FAILURES_PER_BUCKET_SIZE = 1

/** How a lookup may be ended early. */
export interface LookupOptions extends AbortOptions {
  /**
   * Ends the lookup with what it has (the nodes that answered so far), where `signal`
   * rejects it. Requests are sent with this signal when it is given, so it must also
   * abort when `signal` does.
   */
  stop?: AbortSignal
}

/**
 * Port of geth `Table.lookup` (v1.8), iterative Kademlia: seed the result with the table's
 * `bucketSize` closest nodes, keep `alpha` FIND_NODE requests in flight to the closest
 * nodes not yet asked, merge each answer into the sorted result (and hand every node found
 * to `table.addFoundNode`), and stop when nothing is in flight and the `bucketSize`
 * closest nodes seen have all been asked, or once `bucketSize` requests have failed. Self
 * is never asked.
 *
 * A node whose request failed is left out of the answer, which holds only nodes that
 * answered, and its place among the closest goes to the next node seen (geth kept it in
 * place, so one dead node cost the answer a place); a node that answered with an empty
 * list answered, and stays.
 */
export async function lookup (init: LookupInit, target: Uint8Array, options: LookupOptions = {}): Promise<LookupResult> {
  const { table, bucketSize, query } = init
  const inFlight = (): number => Math.max(1, Math.min(init.alpha, init.concurrency?.() ?? init.alpha))
  const maxFailures = bucketSize * MAX_FAILURES_PER_BUCKET_SIZE
  const selfKey = table.selfKey
  // BOUNDED: ≤ the number of distinct nodes the answers name (≤ queries × bucketSize)
  const seen = new Set<string>([keyText(selfKey)])
  // every candidate heard of: the window of nodes to ask is its first bucketSize
  // BOUNDED: ≤ bucketSize + queries × bucketSize entries
  const result = new NodesByDistance<Candidate>(target, Number.MAX_SAFE_INTEGER)
  for (const node of table.closest(target, bucketSize)) {
    seen.add(keyText(node.key))
    result.push({ id: node.id, key: node.key, multiaddrs: node.addrs, round: 0 })
  }

  // BOUNDED: one key per request sent
  const askedKeys: Uint8Array[] = []
  let failures = 0
  let empty = 0
  let rounds = 0
  // BOUNDED: ≤ alpha promises in flight
  const pending = new Map<Candidate, Promise<{ node: Candidate, found: PeerInfo[] | undefined }>>()
  // BOUNDED: one entry per request sent
  const asking = new Set<Candidate>()

  const requestOptions = { signal: options.stop ?? options.signal }
  const ask = (node: Candidate): void => {
    asking.add(node)
    askedKeys.push(node.key)
    pending.set(node, query(node, target, requestOptions).then(
      found => ({ node, found }),
      () => ({ node, found: undefined })
    ))
  }

  let stopped = false
  let onStop = (): void => {}
  const whenStopped = new Promise<typeof STOPPED>(resolve => {
    onStop = () => { resolve(STOPPED) }
    options.stop?.addEventListener('abort', onStop, { once: true })
  })
  try {
    for (;;) {
      if (options.stop?.aborted === true) {
        options.signal?.throwIfAborted()
        stopped = true
        break
      }
      // the window: the bucketSize closest nodes seen that have not failed, so a failed
      // node's place goes to the next closest (until maxFailures)
      let window = 0
      const limit = inFlight()
      for (let i = 0; i < result.length && window < bucketSize && pending.size < limit; i++) {
        if (failures >= maxFailures) {
          break
        }
        const node = result.entries[i] as Candidate
        if (node.answered === false) {
          continue
        }
        window++
        if (node.answered === undefined && !asking.has(node)) {
          ask(node)
        }
      }
      if (pending.size === 0) {
        break
      }
      // the caller's abort ends the lookup at once, even while a request is slow to notice
      const settled = await raceSignal(Promise.race([...pending.values(), whenStopped]), options.signal)
      if (settled === STOPPED) {
        options.signal?.throwIfAborted()
        stopped = true
        break
      }
      const { node, found } = settled
      pending.delete(node)
      node.answered = found != null
      if (found == null) {
        failures++
        continue
      }
      rounds = Math.max(rounds, node.round + 1)
      if (found.length === 0) {
        empty++
        continue
      }
      for (const info of found) {
        const key = keyOf(info.id)
        if (keysEqual(key, selfKey)) {
          continue
        }
        table.addFoundNode(info)
        const text = keyText(key)
        if (!seen.has(text)) {
          seen.add(text)
          result.push({ id: info.id, key, multiaddrs: info.multiaddrs, round: node.round + 1 })
        }
      }
    }
  } finally {
    options.stop?.removeEventListener('abort', onStop)
  }
  return {
    closest: result.entries
      .filter(node => node.answered === true)
      .slice(0, bucketSize)
      .map(({ id, key, multiaddrs }) => ({ id, key, multiaddrs })),
    queries: askedKeys.length,
    failures,
    empty,
    rounds,
    asked: askedKeys,
    stopped
  }
}

const STOPPED = Symbol('stopped')

/** A key as text, for sets and maps of keys. */
export function keyText (key: Uint8Array): string {
  return uint8ArrayToString(key, 'base64')
}

/** What `randomNodes` draws from. */
export interface RandomNodesInit {
  /** Up to `n` distinct random table nodes, in random order. */
  readRandomNodes(n: number): PeerInfo[]
  /** A lookup of a random key; its result. */
  randomLookup(options: AbortOptions): Promise<PeerInfo[]>
  /** Waits `ms` (owned by the service, so it is cancelled on stop). */
  sleep(ms: number, options: AbortOptions): Promise<void>
  /** Random lookups are at least this many ms apart. */
  minLookupInterval: number
  /** Reads per batch. */
  batchSize: number
  /** The clock. */
  now(): number
}

/**
 * An endless stream of fresh random nodes, after geth v1.9's `Table.RandomNodes` iterator:
 * random table reads first, then, when they hold nothing new, random lookups at least
 * `minLookupInterval` apart. "Fresh": a node is not yielded again until every other node
 * the stream knows of has been (the memory of what was yielded is reset once a lookup
 * finds nothing new). Ends only when aborted.
 */
export async function * randomNodes (init: RandomNodesInit, options: AbortOptions = {}): AsyncGenerator<PeerInfo> {
  // BOUNDED: reset whenever a lookup brings nothing new, and never larger than the
  // nodes seen between two such resets (table size + lookup results)
  let yielded = new Set<string>()
  let lastLookup = -Infinity
  for (;;) {
    options.signal?.throwIfAborted()
    // the whole table, shuffled: a random batch could hold only nodes already yielded
    let fresh = init.readRandomNodes(Number.MAX_SAFE_INTEGER)
      .filter(n => !yielded.has(n.id.toString()))
      .slice(0, init.batchSize)
    if (fresh.length === 0) {
      const wait = lastLookup + init.minLookupInterval - init.now()
      if (wait > 0) {
        await init.sleep(wait, options)
      }
      lastLookup = init.now()
      fresh = (await init.randomLookup(options)).filter(n => !yielded.has(n.id.toString()))
      if (fresh.length === 0) {
        yielded = new Set()
        continue
      }
    }
    for (const node of fresh) {
      options.signal?.throwIfAborted()
      yielded.add(node.id.toString())
      yield node
    }
  }
}
