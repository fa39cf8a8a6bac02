import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'

/** The built CLI: this file runs as dist/test/child.js. */
export const CLI = fileURLToPath(new URL('../src/index.js', import.meta.url))

/** How a CLI process ended. */
export interface Exit {
  /** The exit code; null when a signal ended it. */
  code: number | null
  /** The signal that ended it, if one did. */
  signal: NodeJS.Signals | null
}

/**
 * One `node dist/src/index.js …` process, its output collected as it comes. Killed
 * (SIGKILL) after `limit` ms whatever happens, so no test can hang on it.
 */
export class Cli {
  /** The process. */
  readonly child: ChildProcess
  /** Everything it wrote to stdout so far. */
  stdout = ''
  /** Everything it wrote to stderr so far. */
  stderr = ''
  /** Whether the process has ended. */
  ended = false
  /** Resolves when it has ended and its output is read. */
  readonly exited: Promise<Exit>
  private readonly killer: ReturnType<typeof setTimeout>

  constructor (args: string[], limit: number) {
    this.child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { this.stdout += chunk })
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.stderr += chunk })
    this.killer = setTimeout(() => { this.child.kill('SIGKILL') }, limit)
    this.exited = new Promise(resolve => {
      this.child.on('close', (code, signal) => {
        clearTimeout(this.killer)
        this.ended = true
        resolve({ code, signal })
      })
    })
  }

  /** Lines of stdout so far. */
  get lines (): string[] {
    return this.stdout.split('\n').filter(line => line !== '')
  }

  /** stdout lines so far, parsed as JSON (for `--json`). */
  get events (): Array<Record<string, any>> {
    return this.lines.map(line => JSON.parse(line) as Record<string, any>)
  }

  /**
   * Waits (bounded, polling) until `condition` holds; throws with `what` and the output so
   * far when it does not within `ms`, or when the process ends first.
   */
  async waitFor (condition: () => boolean, what: string, ms: number): Promise<void> {
    const until = Date.now() + ms
    // BOUNDED: ends at `until`
    while (!condition()) {
      if (this.ended || Date.now() > until) {
        throw new Error(`${this.ended ? 'the process ended' : 'timed out'} waiting for ${what}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`)
      }
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  /** Sends a signal (the process may already be gone). */
  signal (name: NodeJS.Signals): void {
    if (this.child.exitCode == null && this.child.signalCode == null) {
      this.child.kill(name)
    }
  }
}

/** Every CLI process a suite started, killed together in `afterEach`. */
export class Clis {
  // BOUNDED: the processes of one suite; emptied by killAll()
  private readonly all: Cli[] = []

  /** Starts the CLI with `args`; killed after `limit` ms at the latest. */
  start (args: string[], limit = 60_000): Cli {
    const cli = new Cli(args, limit)
    this.all.push(cli)
    return cli
  }

  /** Runs the CLI to its end and returns its exit and output. */
  async run (args: string[], limit = 60_000): Promise<Exit & { stdout: string, stderr: string }> {
    const cli = this.start(args, limit)
    const exit = await cli.exited
    return { ...exit, stdout: cli.stdout, stderr: cli.stderr }
  }

  /** Kills every process still running and waits for each to end. */
  async killAll (): Promise<void> {
    const all = this.all.splice(0)
    for (const cli of all) {
      cli.signal('SIGKILL')
    }
    await Promise.all(all.map(async cli => cli.exited))
  }
}
