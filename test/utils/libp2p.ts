import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { plaintext } from '@libp2p/plaintext'
import { tcp } from '@libp2p/tcp'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import type { Identify } from '@libp2p/identify'
import type {
  ComponentLogger, Connection, Libp2p, Libp2pEvents, Metrics, PeerId, PeerInfo, PeerStore, PrivateKey,
  ServiceMap, TypedEventTarget
} from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { Libp2pOptions, ServiceFactoryMap } from 'libp2p'

/** The libp2p components our services take, as a node hands them to its services. */
export interface NodeComponents {
  peerId: PeerId
  logger: ComponentLogger
  events: TypedEventTarget<Libp2pEvents>
  peerStore: PeerStore
  registrar: Registrar
  connectionManager: ConnectionManager
  metrics?: Metrics
}

/** A service that does nothing but keep the components it was given, for tests to use. */
export class ComponentsCapture {
  readonly components: NodeComponents

  constructor (components: NodeComponents) {
    this.components = components
  }
}

/** A factory for `services: { capture: captureComponents() }`. */
export function captureComponents (): (components: NodeComponents) => ComponentsCapture {
  return (components) => new ComponentsCapture(components)
}

/** How a test node is made. */
export interface TestNodeOptions<S extends ServiceMap> {
  /** `memory` (default), or `tcp` listening on loopback only, on a free port. */
  transport?: 'memory' | 'tcp'
  /** With `tcp`, the loopback address it listens on. @default '127.0.0.1' */
  listenIp?: string
  /** `plaintext` (default: cheap, still authenticated by key exchange) or `noise`. */
  encryption?: 'plaintext' | 'noise'
  /** Services besides identify (which every node runs, as the discovery service needs). */
  services?: ServiceFactoryMap<S>
  /** A fixed identity; a fresh Ed25519 key otherwise. */
  privateKey?: PrivateKey
  /** libp2p connection manager settings (e.g. `maxConnections`). */
  connectionManager?: Libp2pOptions['connectionManager']
  /** Whether to start the node. @default true */
  start?: boolean
  /** Addresses identify announces instead of the listen addresses (libp2p `addresses.announce`). */
  announce?: string[]
}

/** A test node: the services asked for, plus identify. */
export type TestNode<S extends ServiceMap = Record<string, unknown>> = Libp2p<S & { identify: Identify }>

let memoryCounter = 0

/** A memory-transport listen address no other node in this process uses. */
export function memoryAddress (): string {
  memoryCounter++
  return `/memory/kad-test-${process.pid}-${memoryCounter}-${Math.random().toString(36).slice(2, 8)}`
}

/**
 * A real libp2p v3 node: memory transport unless TCP is asked for (and then only on
 * 127.0.0.1), plaintext or noise, yamux, identify.
 */
export async function createNode<S extends ServiceMap = Record<string, unknown>> (options: TestNodeOptions<S> = {}): Promise<TestNode<S>> {
  const transport = options.transport ?? 'memory'
  const services = { ...(options.services ?? {}), identify: identify() } as unknown as ServiceFactoryMap<S & { identify: Identify }>
  return createLibp2p<S & { identify: Identify }>({
    ...(options.privateKey != null ? { privateKey: options.privateKey } : {}),
    addresses: {
      listen: [transport === 'tcp' ? `/ip4/${loopbackOnly(options.listenIp ?? '127.0.0.1')}/tcp/0` : memoryAddress()],
      ...(options.announce != null ? { announce: options.announce } : {})
    },
    transports: [transport === 'tcp' ? tcp() : memory()],
    connectionEncrypters: [options.encryption === 'noise' ? noise() : plaintext()],
    streamMuxers: [yamux()],
    connectionManager: options.connectionManager,
    services,
    start: options.start ?? true
  })
}

/** `ip`, if it is an IPv4 loopback address: tests never listen anywhere else. */
function loopbackOnly (ip: string): string {
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(ip)) {
    throw new Error(`tests listen on 127.0.0.0/8 only, not ${ip}`)
  }
  return ip
}

/**
 * The nodes of one test, stopped together: create them in a test, call `stop()` in
 * `afterEach`.
 */
export class TestNodes {
  // BOUNDED: the nodes one test creates; emptied by stop()
  private readonly nodes: Libp2p[] = []

  /** Makes one more node. */
  async create<S extends ServiceMap = Record<string, unknown>> (options: TestNodeOptions<S> = {}): Promise<TestNode<S>> {
    const node = await createNode(options)
    this.nodes.push(node)
    return node
  }

  /** Makes `n` nodes, each with `options` (or `options(i)`). */
  async createMany<S extends ServiceMap = Record<string, unknown>> (n: number, options: TestNodeOptions<S> | ((i: number) => TestNodeOptions<S>) = {}): Promise<Array<TestNode<S>>> {
    return Promise.all(Array.from({ length: n }, async (_, i) => this.create(typeof options === 'function' ? options(i) : options)))
  }

  /** Every node made so far. */
  get all (): Libp2p[] {
    return [...this.nodes]
  }

  /** Stops every node; never throws, so `afterEach` always finishes. */
  async stop (): Promise<void> {
    const nodes = this.nodes.splice(0)
    await Promise.all(nodes.map(async node => {
      try {
        await node.stop()
      } catch {}
    }))
  }
}

/** Dials `to` from `from` over its first listen address and returns the connection. */
export async function connect (from: Libp2p, to: Libp2p): Promise<Connection> {
  const addr = to.getMultiaddrs()[0]
  if (addr == null) {
    throw new Error('the node has no listen address')
  }
  return from.dial(addr)
}

/**
 * Makes `node`'s dials to `peer` slow to return, as on a busy node: libp2p records a
 * successful dial in the peer store (a metadata write) before it hands the connection
 * back, and that write now takes `ms` longer, so a dial deadline shorter than `ms` fires
 * after the connection is open.
 */
export function slowDialRecords (node: Libp2p, peer: PeerId, ms: number): void {
  const merge = node.peerStore.merge.bind(node.peerStore)
  node.peerStore.merge = async (id, data, options) => {
    if (id.equals(peer) && data.metadata != null) {
      await new Promise(resolve => setTimeout(resolve, ms))
    }
    return merge(id, data, options)
  }
}

/** A node's addresses as a `PeerInfo`, the way discovery passes nodes around. */
export function peerInfoOf (node: Libp2p): PeerInfo {
  return { id: node.peerId, multiaddrs: node.getMultiaddrs().map(ma => ma.decapsulateCode(421)) }
}

/**
 * Polls `condition` until it holds, for at most `ms` (a bounded wait, not a timing
 * assertion): throws with `what` (or what it returns, read at the time) when it never does.
 */
export async function waitFor (condition: () => boolean | Promise<boolean>, what: string | (() => string), ms = 5000): Promise<void> {
  const until = Date.now() + ms
  while (!(await condition())) {
    if (Date.now() > until) {
      throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`)
    }
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
