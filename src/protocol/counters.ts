import type { CounterGroup, Metrics } from '@libp2p/interface'

/**
 * Named event counters, readable as a plain object (`stats`) for tests and the CLI and
 * mirrored to a libp2p metrics counter group when metrics are configured.
 */
export class Counters {
  /**
   * Counts by name. BOUNDED: one key per counter name; names come from fixed lists in
   * the client and server (message types, `InvalidReason`s, outcomes), never from input.
   */
  readonly stats: Record<string, number> = {}
  private readonly group?: CounterGroup

  constructor (metrics: Metrics | undefined, name: string, help: string) {
    this.group = metrics?.registerCounterGroup(name, { help, label: 'event' })
  }

  /** Adds one to `key`. */
  increment (key: string): void {
    this.stats[key] = (this.stats[key] ?? 0) + 1
    this.group?.increment({ [key]: true })
  }
}
