import assert from 'node:assert/strict'
import { peerIdFromString } from '@libp2p/peer-id'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { distanceCompare, keyOf } from '../../src/table/key.js'
import { waitFor } from '../utils/libp2p.js'
import { FAST } from '../utils/network.js'
import { bundlePage, launchChromium, provideWebSocket, servePage, startNodeNetwork, stopAll, wsAddress } from './harness.js'
import { installWatch } from './watch.js'
import type { PageServer } from './harness.js'
import type { DiscoveryNode } from '../utils/network.js'
import type { Browser, Page } from 'playwright-core'

// Node nodes the page can reach (WebSockets and TCP), and ones it cannot (TCP only)
const REACHABLE = 4
const TCP_ONLY = 2

describe('in a browser (headless Chromium), over WebSockets to Node nodes on 127.0.0.1', function () {
  this.timeout(60_000)
  let network: DiscoveryNode[] = []
  let reachableIds: string[] = []
  let allIds: string[] = []
  let restoreWebSocket = (): void => {}
  let server: PageServer | undefined
  let browser: Browser | undefined
  let page: Page
  let browserId: string
  let browserAddrs: string[]
  // BOUNDED: the ids of the Node nodes' `peer` events, a few per node
  const nodePeerEvents = new Set<string>()
  // BOUNDED: the page's uncaught errors and unhandled rejections in one test
  const pageErrors: string[] = []

  before(async () => {
    restoreWebSocket = provideWebSocket()
    network = await startNodeNetwork(REACHABLE, TCP_ONLY, FAST)
    allIds = network.map(n => n.peerId.toString())
    reachableIds = allIds.slice(0, REACHABLE)
    for (const node of network) {
      node.services.discovery.addEventListener('peer', evt => { nodePeerEvents.add(evt.detail.id.toString()) })
    }
    await waitFor(() => network.every(n => n.services.discovery.size === network.length - 1), 'every Node table to hold the other Node nodes', 20_000)
    // refresh() waits for a refresh to finish, so each node's first one is done: its table
    // takes inbound contacts from here on, and turning the page's node away is a decision
    await Promise.all(network.map(async n => { await n.services.discovery.refresh() }))

    server = await servePage(await bundlePage())
    browser = await launchChromium()
    page = await browser.newPage()
    page.on('pageerror', err => { pageErrors.push(err.stack ?? err.message) })
    await page.addInitScript(installWatch)
    await page.goto(server.url, { timeout: 10_000 })
    await page.waitForFunction(() => globalThis.kadTest != null, undefined, { timeout: 10_000 })
    const bootnodes = [wsAddress(network[0]!)]
    const started = await page.evaluate(async init => globalThis.kadTest!.start(init), { ...FAST, bootnodes })
    browserId = started.peerId
    browserAddrs = started.multiaddrs
  })

  after(async () => {
    await browser?.close()
    await server?.close()
    await stopAll(network)
    restoreWebSocket()
  })

  it('has no listen address, so it announces none', () => {
    assert.deepEqual(browserAddrs, [])
  })

  it('discovers every Node node it can reach: a peer event each, and they fill its table', async () => {
    await page.waitForFunction(ids => ids.every(id => globalThis.kadTest!.state().table.includes(id)), reachableIds, { timeout: 20_000 })
    const state = await page.evaluate(() => globalThis.kadTest!.state())
    assert.ok(state.size >= REACHABLE, `a table of ${state.size}`)
    assert.ok(state.table.every(id => allIds.includes(id)), 'a table entry that is no Node node')
    const events = new Set(state.peerEvents)
    assert.ok(reachableIds.every(id => events.has(id)), `peer events for ${[...events].join(', ')}`)
    assert.ok([...events].every(id => allIds.includes(id)), 'a peer event for a node that is no Node node (itself?)')
    // its auto-dialer connects it to every node it can reach, over WebSockets
    await page.waitForFunction(ids => ids.every(id => globalThis.kadTest!.state().connected.includes(id)), reachableIds, { timeout: 20_000 })
  })

  it('looks up the true closest nodes it can reach, closest first', async () => {
    for (let i = 0; i < 3; i++) {
      const target = crypto.getRandomValues(new Uint8Array(32))
      // the TCP-only nodes cannot answer the page: a lookup's result holds only nodes that answered
      const truth = network.slice(0, REACHABLE)
        .sort((a, b) => distanceCompare(target, keyOf(a.peerId), keyOf(b.peerId)))
        .map(n => n.peerId.toString())
      const found = await page.evaluate(async hex => globalThis.kadTest!.lookup(hex), uint8ArrayToString(target, 'base16'))
      assert.deepEqual(found, truth)
    }
  })

  it('reads distinct random nodes of its table', async () => {
    const some = await page.evaluate(() => globalThis.kadTest!.readRandomNodes(3))
    assert.equal(some.length, 3)
    assert.equal(new Set(some).size, 3)
    assert.ok(some.every(id => allIds.includes(id)), `${some.join(', ')} are not all Node nodes`)
    // read with the table in one turn of the page's event loop, so both see the same table
    const { all, table } = await page.evaluate(n => ({ all: globalThis.kadTest!.readRandomNodes(n), table: globalThis.kadTest!.state().table }), network.length * 2)
    assert.equal(all.length, table.length)
    assert.deepEqual(new Set(all), new Set(table))
  })

  it('has no address at any Node node, nor a place in a table, nor is passed on, though it asked every one', async () => {
    // the lookups above asked every Node node; a server reports its requester once
    // identify tells its addresses, waiting at most requestTimeout for that: watched for
    // longer, whatever a Node node does with the page's node has been done
    const until = Date.now() + FAST.requestTimeout! + 500
    do {
      for (const node of network) {
        const held = node.services.discovery.buckets().flatMap(b => [...b.entries, ...b.replacements]).map(n => n.id.toString())
        assert.ok(!held.includes(browserId), `${node.peerId} holds the browser node`)
      }
      await new Promise(resolve => setTimeout(resolve, 100))
    } while (Date.now() < until)
    for (const node of network.slice(0, REACHABLE)) {
      assert.ok(node.getConnections().some(c => c.remotePeer.toString() === browserId), `${node.peerId} never heard from the browser node`)
      // identify has run (the node knows the page's protocols) and told it of no address
      const known = await node.peerStore.get(peerIdFromString(browserId))
      assert.ok(known.protocols.length > 0, `${node.peerId} has not identified the browser node`)
      assert.deepEqual(known.addresses, [], `${node.peerId} has addresses for the browser node`)
    }
    assert.ok(!nodePeerEvents.has(browserId), 'a Node node emitted a peer event for the browser node')
    const found = await network[1]!.services.discovery.lookup(peerIdFromString(browserId))
    assert.ok(!found.some(n => n.id.toString() === browserId), 'a lookup for the browser node\'s key found it')
  })

  it('stops with nothing left running in the page, and the Node nodes see it go', async () => {
    const report = await page.evaluate(async () => globalThis.kadTest!.stop())
    assert.deepEqual(report, { status: 'stopped', connections: 0, lookupAfterStop: 'NotStartedError' })
    try {
      await page.waitForFunction(() => globalThis.kadWatch!.openSockets() === 0 && globalThis.kadWatch!.pendingTimers().length === 0,
        undefined, { timeout: 10_000 })
    } catch {
      const left = await page.evaluate(() => ({ sockets: globalThis.kadWatch!.openSockets(), timers: globalThis.kadWatch!.pendingTimers() }))
      assert.fail(`after stop, ${left.sockets} WebSockets open and ${left.timers.length} timers pending:\n${left.timers.join('\n\n')}`)
    }
    await waitFor(() => network.every(n => !n.getConnections().some(c => c.remotePeer.toString() === browserId)),
      'every Node node to lose its connections to the browser node', 10_000)
    assert.deepEqual(pageErrors, [])
  })
})
