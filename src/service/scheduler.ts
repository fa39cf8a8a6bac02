import type { AbortOptions } from '@libp2p/interface'

/** A periodic task: what it does, and when it is due next after a run. */
export interface ScheduledTask {
  /** The work; its rejection is reported to `onError`, never thrown. */
  run(): Promise<void>
  /** The next deadline after a run ends, from `now`. */
  next(now: number): number
}

/**
 * The service's loop, after geth's `Table.loop`: one timer, always armed to the earliest
 * deadline of its tasks (geth ran one timer per task); a task never runs twice at once,
 * and its next deadline is set when a run ends (so a slow revalidation delays the next one,
 * as geth's `revalidateDone` does). `stop()` clears the timer and waits for the runs in
 * flight. Scheduling is a function of `now`, so it is testable with a fake clock.
 */
export class Scheduler<T extends string> {
  private readonly now: () => number
  private readonly onError: (task: T, err: unknown) => void
  // BOUNDED: one entry per task name
  private readonly tasks = new Map<T, ScheduledTask>()
  // BOUNDED: one deadline per task name
  private readonly deadlines = new Map<T, number>()
  // BOUNDED: one run per task name
  private readonly running = new Map<T, Promise<void>>()
  private timer?: ReturnType<typeof setTimeout>
  private started = false

  constructor (now: () => number, onError: (task: T, err: unknown) => void) {
    this.now = now
    this.onError = onError
  }

  /** Adds a task, first due at `firstAt`. */
  add (name: T, task: ScheduledTask, firstAt: number): void {
    this.tasks.set(name, task)
    this.deadlines.set(name, firstAt)
    this.arm()
  }

  /** Moves a task's deadline (e.g. after a refresh ran on request). */
  setDeadline (name: T, at: number): void {
    if (this.tasks.has(name)) {
      this.deadlines.set(name, at)
      this.arm()
    }
  }

  /** Starts running due tasks. */
  start (): void {
    this.started = true
    this.arm()
  }

  /** Clears the timer and every task, and waits for the runs in flight to end. */
  async stop (): Promise<void> {
    this.started = false
    clearTimeout(this.timer)
    this.timer = undefined
    await Promise.allSettled(this.running.values())
    this.running.clear()
    this.deadlines.clear()
    this.tasks.clear()
  }

  /** Whether the timer is armed, for tests. */
  get armed (): boolean {
    return this.timer != null
  }

  /** Resolves after `ms`, or rejects when the signal aborts (the timer is cleared). */
  async sleep (ms: number, options: AbortOptions = {}): Promise<void> {
    const signal = options.signal
    signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer)
        reject(signal?.reason)
      }
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort)
        resolve()
      }, ms)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Runs whatever is due, then arms the one timer for the earliest deadline left. */
  private arm (): void {
    if (!this.started) {
      return
    }
    clearTimeout(this.timer)
    this.timer = undefined
    const now = this.now()
    for (const [name, at] of this.deadlines) {
      if (at <= now && !this.running.has(name)) {
        this.deadlines.delete(name)
        this.launch(name)
      }
    }
    let next = Number.POSITIVE_INFINITY
    for (const [name, at] of this.deadlines) {
      if (!this.running.has(name)) {
        next = Math.min(next, at)
      }
    }
    if (Number.isFinite(next)) {
      this.timer = setTimeout(() => { this.arm() }, Math.max(0, next - now))
    }
  }

  private launch (name: T): void {
    const task = this.tasks.get(name)
    if (task == null) {
      return
    }
    const run = task.run()
      .catch(err => { this.onError(name, err) })
      .finally(() => {
        this.running.delete(name)
        if (this.started && this.tasks.has(name)) {
          this.deadlines.set(name, task.next(this.now()))
          this.arm()
        }
      })
    this.running.set(name, run)
  }
}
