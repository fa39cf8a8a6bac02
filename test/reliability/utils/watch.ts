import { getHeapSpaceStatistics, setFlagsFromString } from 'node:v8'
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

/** V8's spaces of compiled code: they grow as a run takes new code paths, which is no leak. */
const CODE_SPACES = new Set(['code_space', 'code_large_object_space'])

/**
 * The heap's objects after two full collections (with a turn of the event loop between:
 * finalizers and weak callbacks free more), in bytes: `heapUsed` without the code spaces.
 */
export async function settledHeap (): Promise<number> {
  collectGarbage()
  await new Promise(resolve => setImmediate(resolve))
  collectGarbage()
  const code = getHeapSpaceStatistics().filter(s => CODE_SPACES.has(s.space_name)).reduce((n, s) => n + s.space_used_size, 0)
  return process.memoryUsage().heapUsed - code
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
