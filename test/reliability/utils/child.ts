import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { KadDiscoveryInit } from '../../../src/index.js'
import type { NodeDBStats } from '../../../src/store/node-db.js'
import type { ChildProcess } from 'node:child_process'

/** How the child node is made (JSON: no `datastore`, bootnodes as strings). */
export interface ChildConfig {
  /** The loopback IP it listens on and dials from. */
  ip: string
  /** Its private key, protobuf-encoded, in hex; a fresh one otherwise. */
  privateKey?: string
  /** The discovery service's init. */
  init: Omit<KadDiscoveryInit, 'datastore' | 'bootnodes'> & { bootnodes?: string[] }
  /** A LevelDB folder for its node database; the libp2p node's memory datastore otherwise. */
  datastorePath?: string
  /** Lifts the server's rate limits, so every frame reaches the decoder. */
  liftRateLimit?: boolean
  /**
   * V8's old-space limit for the child, MiB (`--max-old-space-size`): a heap that grew
   * without bound would end the process with an out-of-memory error.
   */
  maxOldSpaceMiB?: number
  /** Writes batches of `batch` records over `pool` made-up nodes without pause, every `tornEvery`-th cut short. */
  writeLoop?: { batch: number, pool: number, tornEvery: number }
}

/** A command for the child. */
export interface ChildRequest {
  id: number
  cmd: 'stats' | 'gc' | 'resetPeak' | 'lookup' | 'heapSnapshot' | 'stop'
  /** `lookup`: a peer id to look up (a random key otherwise); `heapSnapshot`: the file to write. */
  arg?: string
}

/** The child's answer to a `ChildRequest`. */
export type ChildReply = { id: number, ok: true, result: unknown } | { id: number, ok: false, error: string }

/** What the child reports about itself. */
export interface ChildStats {
  heapUsed: number
  /** The largest `heapUsed` sampled (every 10 ms) since start or the last `resetPeak`. */
  heapPeak: number
  rss: number
  /** CPU time the process used so far (user + system), ms. */
  cpuMs: number
  /** `[peer id, its addresses]` of every table entry. */
  table: Array<[string, string]>
  /** Table entries that passed a liveness check (the ones the node database keeps). */
  liveEntries: number
  /** `tableViolations` of its table: empty when sound. */
  tableProblems: string[]
  server: Record<string, number>
  /** Requests being served and contacts awaiting identify. */
  serving: number
  client: Record<string, number>
  requestConnections: number
  connections: number
  /** The most `close` listeners any one connection holds: what a long-lived connection accumulates. */
  closeListeners: number
  /** Open streams of the discovery protocol over all its connections. */
  streams: number
  /** Those open for longer than twice the request timeout: past every deadline, so left behind. */
  lingeringStreams: number
  /** How the first few lingering streams stand: what a stream left behind waits for. */
  streamStates: string
  db: NodeDBStats
  rejections: number
  exceptions: number
  /** Batches the write loop committed. */
  writes: number
}

interface ChildEvent {
  event: 'ready'
  peerId: string
  addrs: string[]
}

const SCRIPT = fileURLToPath(new URL('./child-node.js', import.meta.url))

/**
 * A discovery node in its own process (`child-node.ts`), driven over IPC. Its stderr is
 * kept (the last lines) for failure messages.
 */
export class ChildNode {
  readonly peerId: string
  readonly addrs: string[]
  readonly process: ChildProcess
  /** Resolves when the process has exited, with its code or signal. */
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  private nextId = 0
  // BOUNDED: one per command awaiting its answer; each settles or times out
  private readonly waiting = new Map<number, { resolve(value: unknown): void, reject(err: Error): void }>()
  private readonly stderr: string[]

  private constructor (child: ChildProcess, ready: ChildEvent, exited: ChildNode['exited'], stderr: string[]) {
    this.process = child
    this.peerId = ready.peerId
    this.addrs = ready.addrs
    this.exited = exited
    this.stderr = stderr
    child.on('message', (message: ChildReply) => {
      const waiter = this.waiting.get(message.id)
      if (waiter == null) {
        return
      }
      this.waiting.delete(message.id)
      if (message.ok) {
        waiter.resolve(message.result)
      } else {
        waiter.reject(new Error(message.error))
      }
    })
    exited.then(() => {
      for (const waiter of this.waiting.values()) {
        waiter.reject(new Error(`the child exited: ${this.lastErrors()}`))
      }
      this.waiting.clear()
    }, () => {})
  }

  /** Starts the child and waits (at most `ms`) until its node runs. */
  static async start (config: ChildConfig, ms = 30_000): Promise<ChildNode> {
    const execArgv = ['--expose-gc', ...(config.maxOldSpaceMiB != null ? [`--max-old-space-size=${config.maxOldSpaceMiB}`] : [])]
    const child = fork(SCRIPT, [JSON.stringify(config)], { execArgv, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] })
    // BOUNDED: the last 20 lines
    const stderr: string[] = []
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr.push(...chunk.split('\n').filter(line => line !== ''))
      stderr.splice(0, Math.max(0, stderr.length - 20))
    })
    const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
      child.once('exit', (code, signal) => { resolve({ code, signal }) })
    })
    const ready = await new Promise<ChildEvent>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL')
        reject(new Error(`the child did not start within ${ms} ms: ${stderr.join(' | ')}`))
      }, ms)
      child.on('message', (message: Partial<ChildEvent>) => {
        if (message.event === 'ready') {
          clearTimeout(timer)
          resolve(message as ChildEvent)
        }
      })
      exited.then(({ code, signal }) => {
        clearTimeout(timer)
        reject(new Error(`the child exited (${code ?? signal}) before it started: ${stderr.join(' | ')}`))
      }, () => {})
    })
    return new ChildNode(child, ready, exited, stderr)
  }

  /** Sends a command and waits (at most `ms`) for its answer. */
  async call<T> (cmd: ChildRequest['cmd'], arg?: string, ms = 60_000): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id)
        reject(new Error(`the child did not answer ${cmd} within ${ms} ms`))
      }, ms)
      this.waiting.set(id, {
        resolve: value => { clearTimeout(timer); resolve(value as T) },
        reject: err => { clearTimeout(timer); reject(err) }
      })
      this.process.send({ id, cmd, arg } satisfies ChildRequest, err => {
        if (err != null) {
          this.waiting.delete(id)
          clearTimeout(timer)
          reject(err)
        }
      })
    })
  }

  async stats (): Promise<ChildStats> {
    return this.call<ChildStats>('stats')
  }

  /** The child's heap objects after two full collections (`settledHeap`: compiled code left out). */
  async settledHeap (): Promise<number> {
    return this.call<number>('gc')
  }

  /** Whether the process still runs. */
  get running (): boolean {
    return this.process.exitCode == null && this.process.signalCode == null
  }

  /** The last lines the child wrote to stderr. */
  lastErrors (): string {
    return this.stderr.join(' | ')
  }

  /** Stops the node and waits for the process to end; SIGKILL after `ms`. Never throws. */
  async stop (ms = 10_000): Promise<void> {
    if (!this.running) {
      return
    }
    const timer = setTimeout(() => { this.process.kill('SIGKILL') }, ms)
    await this.call('stop', undefined, ms).catch(() => { this.process.kill('SIGKILL') })
    await this.exited
    clearTimeout(timer)
  }
}
