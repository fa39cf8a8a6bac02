/**
 * The page side of the browser test, bundled by esbuild from the built output (this file
 * and `dist/src/index.js`) and loaded in headless Chromium. It builds a browser libp2p
 * node with the discovery service and a WebSocket transport, and offers the test what it
 * needs as `globalThis.kadTest`; everything crossing to the test is plain data (ids as
 * strings), since `page.evaluate` passes JSON.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { createLibp2p } from 'libp2p'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { kadDiscovery } from '../../src/index.js'
import type { KadDiscovery, KadDiscoveryInit } from '../../src/index.js'
import type { Identify } from '@libp2p/identify'
import type { Libp2p } from '@libp2p/interface'

/** What `stop()` found once the node had stopped. */
export interface StopReport {
  status: string
  connections: number
  /** `lookup()` after stop: the error's name, or `'resolved'`. */
  lookupAfterStop: string
}

/** What the test calls in the page. */
export interface BrowserNode {
  /** Starts the node; the init is JSON (numbers and bootnode strings). */
  start(init: KadDiscoveryInit): Promise<{ peerId: string, multiaddrs: string[] }>
  /** The ids of the `peer` events so far, and of the table, the connected peers. */
  state(): { peerEvents: string[], table: string[], size: number, connected: string[] }
  /** An iterative lookup of a hex key: the ids found, closest first. */
  lookup(targetHex: string): Promise<string[]>
  readRandomNodes(count: number): string[]
  stop(): Promise<StopReport>
}

declare global {
  var kadTest: BrowserNode | undefined
}

let node: Libp2p<{ discovery: KadDiscovery, identify: Identify }> | undefined
// BOUNDED: one id per `peer` event of one test page's node (a network of a few nodes)
const peerEvents: string[] = []

function started (): Libp2p<{ discovery: KadDiscovery, identify: Identify }> {
  if (node == null) {
    throw new Error('start() first')
  }
  return node
}

globalThis.kadTest = {
  async start (init) {
    node = await createLibp2p({
      // a browser cannot listen: the node has no listen address at all
      addresses: { listen: [] },
      transports: [webSockets()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      // libp2p's browser default refuses insecure /ws and private (here loopback)
      // addresses; the test network is plain /ws on 127.0.0.1
      connectionGater: { denyDialMultiaddr: async () => false },
      services: { identify: identify(), discovery: kadDiscovery(init) }
    })
    node.services.discovery.addEventListener('peer', evt => { peerEvents.push(evt.detail.id.toString()) })
    return { peerId: node.peerId.toString(), multiaddrs: node.getMultiaddrs().map(ma => ma.toString()) }
  },

  state () {
    const discovery = started().services.discovery
    return {
      peerEvents: [...peerEvents],
      table: discovery.nodes().map(n => n.id.toString()),
      size: discovery.size,
      connected: started().getConnections().map(c => c.remotePeer.toString())
    }
  },

  async lookup (targetHex) {
    const found = await started().services.discovery.lookup(uint8ArrayFromString(targetHex, 'base16'))
    return found.map(n => n.id.toString())
  },

  readRandomNodes (count) {
    return started().services.discovery.readRandomNodes(count).map(n => n.id.toString())
  },

  async stop () {
    const libp2p = started()
    await libp2p.stop()
    let lookupAfterStop = 'resolved'
    try {
      await libp2p.services.discovery.lookup(new Uint8Array(32))
    } catch (err: any) {
      lookupAfterStop = err.name
    }
    return { status: libp2p.status, connections: libp2p.getConnections().length, lookupAfterStop }
  }
}
