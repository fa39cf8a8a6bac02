import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { noise } from '@chainsafe/libp2p-noise'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { yamux } from '@libp2p/yamux'
import { build } from 'esbuild'
import { createLibp2p } from 'libp2p'
import { chromium } from 'playwright-core'
import { WebSocket as NodeWebSocket } from 'ws'
import { kadDiscovery } from '../../src/index.js'
import type { KadDiscoveryInit } from '../../src/index.js'
import type { DiscoveryNode } from '../utils/network.js'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Browser } from 'playwright-core'

/** Where the test finds Chromium: Debian's package, unless `CHROMIUM_PATH` says otherwise. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

/**
 * Bundles the page entry (`dist/test/browser/page.js`, which imports the built library)
 * for the browser, as an application's bundler would. Fails naming every import esbuild
 * could not resolve for a browser: a Node built-in among them is a Node-only dependency.
 */
export async function bundlePage (): Promise<string> {
  const entry = join(dirname(fileURLToPath(import.meta.url)), 'page.js')
  try {
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'chrome120',
      write: false,
      logLevel: 'silent'
    })
    return result.outputFiles[0]!.text
  } catch (err: any) {
    const errors: Array<{ text: string, location?: { file: string } | null, notes?: Array<{ text: string }> }> = err.errors ?? []
    if (errors.length === 0) {
      throw err
    }
    const lines = errors.map(e => `  ${e.location?.file ?? '?'}: ${[e.text, ...(e.notes ?? []).map(n => n.text)].join(' ')}`)
    throw new Error(`the library does not bundle for the browser:\n${lines.join('\n')}`)
  }
}

/** A page and its script, served on 127.0.0.1 (a secure context, as a deployment's https page is). */
export interface PageServer {
  url: string
  close(): Promise<void>
}

/** Serves `/` (a page loading `/page.js` as a module) and `/page.js` on 127.0.0.1, a free port. */
export async function servePage (script: string): Promise<PageServer> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/') {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end('<!doctype html><title>kad-discovery</title><script type="module" src="/page.js"></script>')
    } else if (req.url === '/page.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      res.end(script)
    } else {
      res.writeHead(404)
      res.end()
    }
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/`,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>(resolve => { server.close(() => { resolve() }) })
    }
  }
}

/**
 * Headless Debian Chromium. Missing Chromium fails the run, with how to install it: the
 * browser test is part of `npm test`, and a skipped test would pass a CI that never ran it.
 */
export async function launchChromium (): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`the browser test needs Chromium at ${CHROMIUM_PATH}: install it with \`apt-get install -y chromium\` (Debian), or set CHROMIUM_PATH`)
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    timeout: 20_000,
    // root has no sandbox; the rest keeps Chromium from calling out of a closed network
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync']
  })
}

/**
 * Gives Node a global `WebSocket` while the test runs: `@libp2p/websockets` dials with the
 * global one, which Node 20 lacks (Node 22 has it). Returns the undo.
 */
export function provideWebSocket (): () => void {
  if (globalThis.WebSocket != null) {
    return () => {}
  }
  globalThis.WebSocket = NodeWebSocket as unknown as typeof WebSocket
  return () => { delete (globalThis as { WebSocket?: unknown }).WebSocket }
}

/**
 * A network of Node discovery nodes on 127.0.0.1 (noise, yamux, identify; TCP and
 * WebSockets): the first `reachable` listen on TCP and WebSockets, the next `tcpOnly` on
 * TCP alone, out of a browser's reach. The first node is every other node's bootnode.
 * Stop them with `stopAll`.
 */
export async function startNodeNetwork (reachable: number, tcpOnly: number, init: KadDiscoveryInit): Promise<DiscoveryNode[]> {
  const create = async (listen: string[], bootnodes: string[]): Promise<DiscoveryNode> => createLibp2p({
    addresses: { listen },
    transports: [tcp(), webSockets()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), discovery: kadDiscovery({ ...init, bootnodes }) }
  })
  const both = ['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws']
  const boot = await create(both, [])
  const bootAddr = boot.getMultiaddrs()[0]!.toString()
  const rest = await Promise.all([
    ...Array.from({ length: reachable - 1 }, async () => create(both, [bootAddr])),
    ...Array.from({ length: tcpOnly }, async () => create(['/ip4/127.0.0.1/tcp/0'], [bootAddr]))
  ])
  return [boot, ...rest]
}

/** A node's WebSocket address, with its peer id: what a browser can dial. */
export function wsAddress (node: DiscoveryNode): string {
  const addr = node.getMultiaddrs().find(ma => ma.toString().includes('/ws/'))
  if (addr == null) {
    throw new Error(`${node.peerId} has no WebSocket address`)
  }
  return addr.toString()
}

/** Stops every node; never throws, so `after` always finishes. */
export async function stopAll (nodes: DiscoveryNode[]): Promise<void> {
  await Promise.all(nodes.map(async node => {
    try {
      await node.stop()
    } catch {}
  }))
}
