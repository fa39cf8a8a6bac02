import { loadMark, utilizationSince } from '../protocol/load.js'
import { AddResult } from '../table/types.js'
import type { RevalidationOutcome } from '../table/revalidation.js'
import type { Table } from '../table/table.js'
import type { RemoveReason } from '../table/types.js'
import type { CounterGroup, Histogram, Metrics, StopTimer } from '@libp2p/interface'

/** What the metrics read their gauges from. */
export interface MetricSources {
  table: Table
  dbSize(): Promise<number>
  now(): number
}

// counting the node database is a scan of every record: scrapes every few seconds must
// not queue one behind every lookup's bookkeeping
const DB_SIZE_TTL = 60_000

/** `read`, called at most once per `ttl` ms; between, the last value (or the call in flight). */
function cachedFor (ttl: number, read: () => Promise<number>, now: () => number): () => Promise<number> {
  let last: Promise<number> | undefined
  let at = -Infinity
  return async () => {
    if (last == null || now() - at >= ttl) {
      at = now()
      last = read()
      last.catch(() => { last = undefined })
    }
    return last
  }
}

const PREFIX = 'libp2p_kad_discovery'

/**
 * The service's metrics, through `components.metrics` when the node has them (else every
 * call is a no-op): table size, per-bucket fill, replacements, revalidations, evictions by
 * reason, IP-limit refusals, lookups and their duration, node database size. Requests in
 * and out by type and outcome, rate-limited ones included, are the protocol's counter
 * groups (`libp2p_kad_discovery_client_events_total`, `…_server_events_total`).
 */
export class DiscoveryMetrics {
  private readonly metrics?: Metrics
  private adds?: CounterGroup
  private revalidations?: CounterGroup
  private evictions?: CounterGroup
  private lookups?: Histogram

  constructor (metrics?: Metrics) {
    this.metrics = metrics
  }

  /** Registers every metric; gauges are calculated when scraped. */
  register (sources: MetricSources): void {
    const metrics = this.metrics
    if (metrics == null) {
      return
    }
    const { table } = sources
    metrics.registerMetric(`${PREFIX}_table_size`, { help: 'Nodes in the table', calculate: () => table.size })
    metrics.registerMetricGroup(`${PREFIX}_bucket_fill`, {
      label: 'bucket',
      help: 'Entries per bucket',
      calculate: () => Object.fromEntries(table.buckets().map(b => [String(b.index), b.entries.length]))
    })
    metrics.registerMetric(`${PREFIX}_replacements`, {
      help: 'Nodes on replacement lists',
      calculate: () => table.buckets().reduce((sum, b) => sum + b.replacements.length, 0)
    })
    metrics.registerMetric(`${PREFIX}_node_db_size`, { help: 'Records in the node database (counted at most once a minute)', calculate: cachedFor(DB_SIZE_TTL, sources.dbSize, sources.now) })
    let since = loadMark()
    metrics.registerMetric(`${PREFIX}_event_loop_utilization`, {
      help: 'Share of the time since the last scrape the event loop was busy, 0 to 1 (Node only): near 1, timeouts are not charged to peers',
      calculate: () => {
        const load = utilizationSince(since) ?? 0
        since = loadMark()
        return load
      }
    })
    this.adds = metrics.registerCounterGroup(`${PREFIX}_adds_total`, { label: 'result', help: 'Nodes offered to the table by outcome; ip-limit counts refusals' })
    this.revalidations = metrics.registerCounterGroup(`${PREFIX}_revalidations_total`, { label: 'outcome', help: 'Revalidation pings by outcome, and entries whose addresses an answer checked (answered)' })
    this.evictions = metrics.registerCounterGroup(`${PREFIX}_evictions_total`, { label: 'reason', help: 'Nodes that left the table, by reason' })
    this.lookups = metrics.registerHistogram(`${PREFIX}_lookup_seconds`, { help: 'Lookup duration', buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] })
  }

  /** Counts an add by outcome. */
  added (result: AddResult): void {
    if (result !== AddResult.Present) {
      this.adds?.increment({ [result]: true })
    }
  }

  /** Counts a revalidation by outcome. */
  revalidated (outcome: RevalidationOutcome): void {
    this.revalidations?.increment({ [outcome]: true })
  }

  /** Counts an entry whose addresses a lookup's answer checked (outcome `answered`). */
  checkedByAnswer (): void {
    this.revalidations?.increment({ answered: true })
  }

  /** Counts an eviction by reason. */
  removed (reason: RemoveReason): void {
    this.evictions?.increment({ [reason]: true })
  }

  /** Starts timing a lookup; call the result when it ends. */
  lookupTimer (): StopTimer {
    return this.lookups?.timer() ?? (() => {})
  }
}
