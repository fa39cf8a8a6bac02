import {
  DIAL_GROW_UTILIZATION, DIAL_OVERLOAD_SPAN, DIAL_TARGET_GROW_INTERVAL, DIAL_TARGET_SHRINK_INTERVAL, MIN_DIAL_TARGET
} from '../constants.js'
import { OVERLOAD_UTILIZATION } from '../protocol/load.js'

/** What one reading of the load did to the target. */
export type DialTargetChange = 'shrunk' | 'grown' | undefined

/**
 * How many dialed connections the auto-dialer keeps, fitted to the node's own load (pure
 * state, fed readings by the dialer). Each dialed connection costs its node a ping every
 * 10 s (libp2p's connection monitor) and its peer the same, and each dial an upgrade and
 * identify both ways: an overloaded node (many nodes in one process, a slow device) keeps
 * fewer, rather than have the monitor abort connections whose pings time out and dial
 * again. Only a lasting overload counts: once every reading for `DIAL_OVERLOAD_SPAN` was
 * overloaded, the target halves at most every `DIAL_TARGET_SHRINK_INTERVAL`, down to
 * `MIN_DIAL_TARGET` (the eclipse defence's share of geth's 16). Below
 * `DIAL_GROW_UTILIZATION` it grows by one every `DIAL_TARGET_GROW_INTERVAL`, so nodes
 * sharing a process do not all grow at once.
 */
export class DialTarget {
  private readonly max: number
  private current: number
  private changedAt = -Infinity
  // when the load was first read overloaded without a calmer reading since
  private overloadedFrom?: number

  constructor (max: number) {
    this.max = max
    this.current = max
  }

  /** The target now. */
  get value (): number {
    return this.current
  }

  /** The least the target shrinks to. */
  get floor (): number {
    return Math.min(MIN_DIAL_TARGET, this.max)
  }

  /** Back to the full target, as at the start. */
  reset (): void {
    this.current = this.max
    this.changedAt = -Infinity
    this.overloadedFrom = undefined
  }

  /** Takes one reading of the load (0 to 1) at `now`, and says what changed. */
  fit (load: number, now: number): DialTargetChange {
    const overloaded = load >= OVERLOAD_UTILIZATION
    this.overloadedFrom = overloaded ? this.overloadedFrom ?? now : undefined
    const sinceChange = now - this.changedAt
    if (overloaded && now - (this.overloadedFrom ?? now) >= DIAL_OVERLOAD_SPAN && this.current > this.floor &&
      sinceChange >= DIAL_TARGET_SHRINK_INTERVAL) {
      this.current = Math.max(this.floor, Math.floor(this.current / 2))
      this.changedAt = now
      return 'shrunk'
    }
    if (load < DIAL_GROW_UTILIZATION && this.current < this.max && sinceChange >= DIAL_TARGET_GROW_INTERVAL) {
      this.current++
      this.changedAt = now
      return 'grown'
    }
    return undefined
  }
}
