import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { plaintext } from '@libp2p/plaintext'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { memoryAddress } from '../../utils/libp2p.js'
import type { TestNode } from '../../utils/libp2p.js'
import type { Libp2p, PrivateKey, ServiceMap } from '@libp2p/interface'
import type { Libp2pOptions, ServiceFactoryMap } from 'libp2p'

/** How a scenario node is made. */
export interface ScenarioNodeOptions<S extends ServiceMap> {
  /**
   * A loopback IPv4 address (127.x.y.z) the node listens on over TCP and dials from, so
   * every peer sees it at that address; without one, the memory transport.
   */
  ip?: string
  /** Services besides identify. */
  services?: ServiceFactoryMap<S>
  /** A fixed identity; a fresh Ed25519 key otherwise. */
  privateKey?: PrivateKey
  /** libp2p connection manager settings. */
  connectionManager?: Libp2pOptions['connectionManager']
}

/**
 * A real libp2p node for the scenarios: TCP bound to `ip` for listening and for dialing
 * (a TCP dial on loopback leaves from 127.0.0.1 unless given a source address, and then
 * every node would look like one host), or the memory transport; plaintext (still
 * authenticated by the key exchange), yamux, identify.
 */
export async function scenarioNode<S extends ServiceMap = Record<string, unknown>> (options: ScenarioNodeOptions<S> = {}): Promise<TestNode<S>> {
  const services = { ...(options.services ?? {}), identify: identify() } as unknown as ServiceFactoryMap<S & { identify: ReturnType<ReturnType<typeof identify>> }>
  // `localAddress` goes to net.connect with the rest of dialOpts; its type lists only a few
  const dialOpts = { localAddress: options.ip } as unknown as NonNullable<Parameters<typeof tcp>[0]>['dialOpts']
  return createLibp2p({
    ...(options.privateKey != null ? { privateKey: options.privateKey } : {}),
    addresses: { listen: [options.ip != null ? `/ip4/${options.ip}/tcp/0` : memoryAddress()] },
    transports: [options.ip != null ? tcp({ dialOpts }) : memory()],
    connectionEncrypters: [plaintext()],
    streamMuxers: [yamux()],
    connectionManager: options.connectionManager,
    services
  }) as unknown as Promise<TestNode<S>>
}

/** The nodes of one scenario run, stopped together however the run ends. */
export class NodeGroup {
  // BOUNDED: the nodes one scenario run makes; emptied by stop()
  private readonly nodes: Libp2p[] = []

  /** Makes a node and keeps it for `stop()`. */
  async create<S extends ServiceMap = Record<string, unknown>> (options: ScenarioNodeOptions<S> = {}): Promise<TestNode<S>> {
    const node = await scenarioNode(options)
    this.nodes.push(node)
    return node
  }

  /** Makes `n` nodes, `options(i)` each, a few at a time so a busy machine keeps up. */
  async createMany<S extends ServiceMap = Record<string, unknown>> (n: number, options: (i: number) => ScenarioNodeOptions<S>): Promise<Array<TestNode<S>>> {
    const made: Array<TestNode<S>> = []
    for (let i = 0; i < n; i += 8) {
      const batch = Array.from({ length: Math.min(8, n - i) }, async (_, j) => this.create(options(i + j)))
      made.push(...await Promise.all(batch))
    }
    return made
  }

  /** Stops one node and forgets it; never throws. */
  async stopOne (node: Libp2p): Promise<void> {
    const i = this.nodes.indexOf(node)
    if (i >= 0) {
      this.nodes.splice(i, 1)
    }
    try {
      await node.stop()
    } catch {}
  }

  /** Stops every node; never throws, so a failed run still cleans up. */
  async stop (): Promise<void> {
    const nodes = this.nodes.splice(0)
    await Promise.all(nodes.map(async node => { await this.stopOne(node) }))
  }
}

/**
 * A distinct /24 per index on loopback for honest nodes: 127.(10 + i / 200).(i % 200).1,
 * away from the attackers' 127.0.1.0/24 and 127.0.2.0/24 and from 127.0.0.1.
 */
export function honestIP (i: number): string {
  return `127.${10 + Math.floor(i / 200)}.${i % 200}.1`
}

/** Sleeps `ms`. */
export async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}
