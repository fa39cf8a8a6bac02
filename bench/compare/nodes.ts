import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { memory } from '@libp2p/memory'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
// @libp2p/ping is a dependency of @libp2p/kad-dht (which needs the ping service); both
// systems get it so that they run on the same libp2p stack
import { ping } from '@libp2p/ping'
import { plaintext } from '@libp2p/plaintext'
import { yamux } from '@libp2p/yamux'
import { sha256 } from '@noble/hashes/sha2.js'
import { createLibp2p } from 'libp2p'
import { keyOf } from '../../src/table/key.js'
import type { Libp2p, PeerId, PrivateKey, ServiceMap } from '@libp2p/interface'
import type { ServiceFactoryMap } from 'libp2p'

/** Node `index` of a scenario: the same key, peer id and Kademlia key in both systems. */
export interface Identity {
  index: number
  privateKey: PrivateKey
  peerId: PeerId
  /** `sha256(peerId multihash)`: the Kademlia key in both systems. */
  key: Uint8Array
}

/**
 * The identities of nodes `0 … n-1`: node `i`'s Ed25519 key is derived from the seed
 * `sha256("libp2p-kad-discovery compare node <i>")`, so node `i` has the same peer id in
 * every run and in both systems.
 */
export async function identities (n: number): Promise<Identity[]> {
  const out: Identity[] = []
  for (let index = 0; index < n; index++) {
    const seed = sha256(new TextEncoder().encode(`libp2p-kad-discovery compare node ${index}`))
    const privateKey = await generateKeyPairFromSeed('Ed25519', seed)
    const peerId = peerIdFromPrivateKey(privateKey)
    out.push({ index, privateKey, peerId, key: keyOf(peerId) })
  }
  return out
}

/** A memory-transport listen address unique to this process, system, size and node. */
export function listenAddress (system: string, size: number, index: number): string {
  return `/memory/compare-${process.pid}-${system}-${size}-${index}`
}

/** The multiaddr (with `/p2p/`) other nodes are given to reach `identity`. */
export function dialAddress (system: string, size: number, identity: Identity): string {
  return `${listenAddress(system, size, identity.index)}/p2p/${identity.peerId.toString()}`
}

/**
 * One libp2p v3 node of the comparison, the same stack for both systems: memory
 * transport, plaintext, yamux, identify, ping, and libp2p's default connection manager
 * settings (`maxConnections` 300, …). Only `services` differ. `observe` sees the node
 * before it starts (so that a listener misses none of its connections).
 */
export async function createBenchNode<S extends ServiceMap> (identity: Identity, listen: string, services: ServiceFactoryMap<S>, observe?: (libp2p: Libp2p) => void): Promise<Libp2p<S>> {
  const node = await createLibp2p<S>({
    start: false,
    privateKey: identity.privateKey,
    addresses: { listen: [listen] },
    transports: [memory()],
    connectionEncrypters: [plaintext()],
    streamMuxers: [yamux()],
    services: { ...services, identify: identify(), ping: ping() } as unknown as ServiceFactoryMap<S>
  })
  observe?.(node as unknown as Libp2p)
  await node.start()
  return node
}

/** Resolves with `promise`'s value, or with `fallback` after `ms`: a bounded wait. */
export async function within<T> (promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<T>(resolve => { timer = setTimeout(() => { resolve(fallback) }, ms) })
    ])
  } finally {
    clearTimeout(timer)
  }
}

/** Runs `fn` on every item, at most `concurrency` at once. */
export async function inBatches<T, R> (items: T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i] as T, i)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
  return out
}
