import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'

/**
 * A full garbage collection. `global.gc` exists only under `node --expose-gc`; mocha runs
 * without it, so the flag is set at run time and the function read from a fresh context
 * (V8 exposes it to contexts made after the flag is set).
 */
export function collectGarbage (): void {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (exposed != null) {
    exposed()
    return
  }
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
}

/** The heap in use after a full collection, in bytes. */
export async function settledHeap (): Promise<number> {
  // twice, with a turn of the event loop between: finalizers and weak callbacks free more
  collectGarbage()
  await new Promise(resolve => setImmediate(resolve))
  collectGarbage()
  return process.memoryUsage().heapUsed
}

/** Samples `heapUsed` every `ms` until stopped and keeps the peak. */
export class HeapSampler {
  peak: number
  private readonly timer: NodeJS.Timeout

  constructor (ms = 20) {
    this.peak = process.memoryUsage().heapUsed
    this.timer = setInterval(() => { this.sample() }, ms)
  }

  sample (): void {
    this.peak = Math.max(this.peak, process.memoryUsage().heapUsed)
  }

  stop (): number {
    clearInterval(this.timer)
    this.sample()
    return this.peak
  }
}

/**
 * Records every unhandled rejection and uncaught exception while a scenario runs: the
 * scenarios claim none happen, and a listener (unlike mocha's) lets the run finish and
 * report them instead of dying on the first.
 */
export class ProcessWatch {
  // BOUNDED: one scenario run's failures; a sound run has none, and only the count and
  // the first few messages are reported
  readonly rejections: string[] = []
  // BOUNDED: as above
  readonly exceptions: string[] = []
  private readonly onRejection = (reason: unknown): void => { this.rejections.push(describe(reason)) }
  private readonly onException = (err: unknown): void => { this.exceptions.push(describe(err)) }

  constructor () {
    process.on('unhandledRejection', this.onRejection)
    process.on('uncaughtException', this.onException)
  }

  stop (): void {
    process.off('unhandledRejection', this.onRejection)
    process.off('uncaughtException', this.onException)
  }
}

function describe (err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

/** Mebibytes, two decimals, for figures. */
export function mib (bytes: number): number {
  return Math.round(bytes / 1024 / 1024 * 100) / 100
}

/** Polls `condition` every 50 ms for at most `ms`; whether it came true. A bounded wait. */
export async function until (condition: () => boolean | Promise<boolean>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    if (await condition()) {
      return true
    }
    if (Date.now() > end) {
      return false
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}
