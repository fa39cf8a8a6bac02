/**
 * How busy our own event loop was over a span: a request that timed out while the loop
 * was saturated (hundreds of nodes in one process, a long GC) says nothing about the peer,
 * and must not be charged to it.
 */

/** Event-loop utilisation at or above this over a request's life makes a timeout ours. */
export const OVERLOAD_UTILIZATION = 0.9

interface Utilization { idle: number, active: number, utilization: number }
type EventLoopUtilization = (current?: Utilization, previous?: Utilization) => Utilization

// Node's performance.eventLoopUtilization; browsers have no equivalent
const measure = (globalThis.performance as { eventLoopUtilization?: EventLoopUtilization } | undefined)?.eventLoopUtilization?.bind(globalThis.performance)

/** A point to measure the loop's load from. */
export interface LoadMark {
  /** When it was taken, ms. */
  readonly at: number
  /** The runtime's utilisation counters then, where it has them. */
  readonly elu?: Utilization
}

/** Marks now. */
export function loadMark (): LoadMark {
  return { at: Date.now(), elu: measure?.() }
}

/**
 * The share of the time since `mark` the event loop spent busy, 0 to 1. Where the runtime
 * cannot tell (browsers), a timer that fired late says it: `expected` ms were asked for,
 * and every ms beyond was spent on other work.
 */
export function loadSince (mark: LoadMark, expected: number): number {
  const utilization = utilizationSince(mark)
  if (utilization != null) {
    return utilization
  }
  const elapsed = Date.now() - mark.at
  return elapsed <= 0 ? 0 : Math.max(0, Math.min(1, (elapsed - expected) / elapsed))
}

/** The runtime's own event-loop utilisation since `mark`, where it measures one (Node). */
export function utilizationSince (mark: LoadMark): number | undefined {
  return measure != null && mark.elu != null ? measure(measure(), mark.elu).utilization : undefined
}

/** Whether the loop was overloaded since `mark`. */
export function overloadedSince (mark: LoadMark, expected: number): boolean {
  return loadSince(mark, expected) >= OVERLOAD_UTILIZATION
}

/** How a `LoadGauge` reads the loop's load since a mark; `loadSince`'s runtime part by default. */
export type LoadSampler = (mark: LoadMark) => number | undefined

/**
 * The event loop's recent load, read without a timer of its own: each call after a window
 * has passed closes that window and opens the next, so the figure is at most two windows
 * old. Background work asks it before it starts (`overloaded()`): a node whose own process
 * is saturated puts off what can wait, since each connection it opens then costs more and
 * libp2p's connection monitor closes connections whose pings time out.
 */
export class LoadGauge {
  private readonly windowMs: number
  private readonly sample: LoadSampler
  private readonly mark: () => LoadMark
  private opened: LoadMark
  private load = 0

  constructor (options: { windowMs?: number, sample?: LoadSampler, mark?: () => LoadMark } = {}) {
    this.windowMs = options.windowMs ?? LOAD_WINDOW
    this.sample = options.sample ?? utilizationSince
    this.mark = options.mark ?? loadMark
    this.opened = this.mark()
  }

  /** The load of the last closed window, 0 to 1 (0 where the runtime cannot tell). */
  current (): number {
    const now = this.mark()
    if (now.at - this.opened.at >= this.windowMs) {
      this.load = this.sample(this.opened) ?? 0
      this.opened = now
    }
    return this.load
  }

  /** Whether the loop was overloaded over the last closed window. */
  overloaded (): boolean {
    return this.current() >= OVERLOAD_UTILIZATION
  }
}

/** The span a `LoadGauge` averages over, ms. */
export const LOAD_WINDOW = 1000
