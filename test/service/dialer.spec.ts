import assert from 'node:assert/strict'
import { NotStartedError, TypedEventEmitter } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import { DIAL_TAG, DIAL_TAG_RENEW_INTERVAL, DIAL_TAG_VALUE, MAX_DIAL_BACKOFF, MAX_DIAL_HISTORY, MIN_DIAL_TARGET } from '../../src/constants.js'
import { AutoDialer } from '../../src/service/dialer.js'
import { seededRandom } from '../../src/table/random.js'
import { captureComponents, connect, peerInfoOf, slowDialRecords, TestNodes, waitFor } from '../utils/libp2p.js'
import { fakePeerId, tcpAddr } from '../utils/peers.js'
import type { AutoDialerComponents, AutoDialerInit } from '../../src/service/dialer.js'
import type { ComponentsCapture, TestNode } from '../utils/libp2p.js'
import type { AbortOptions, Connection, Libp2pEvents, PeerId, PeerInfo, PeerStore } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

const random = seededRandom(12)

/** A clock that moves only when the test says; `sleep` resolves as it passes. */
class FakeClock {
  time = 1_000_000
  // BOUNDED: the dialer's pending sleeps (its loop and its tag renewal)
  private sleepers: Array<{ at: number, resolve(): void }> = []

  readonly now = (): number => this.time

  readonly sleep = async (ms: number, options: AbortOptions = {}): Promise<void> => {
    options.signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const sleeper = {
        at: this.time + ms,
        resolve: () => {
          options.signal?.removeEventListener('abort', onAbort)
          resolve()
        }
      }
      const onAbort = (): void => {
        this.sleepers = this.sleepers.filter(s => s !== sleeper)
        reject(options.signal?.reason)
      }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.sleepers.push(sleeper)
    })
  }

  /** Moves time on by `ms`, waking sleepers in order and letting the dialer run between. */
  async advance (ms: number): Promise<void> {
    const end = this.time + ms
    for (let i = 0; i < 100_000; i++) {
      await settle()
      const due = this.sleepers.filter(s => s.at <= end).sort((a, b) => a.at - b.at)[0]
      if (due == null) {
        break
      }
      this.time = Math.max(this.time, due.at)
      this.sleepers = this.sleepers.filter(s => s !== due)
      due.resolve()
    }
    this.time = end
    await settle()
  }
}

/** Lets every pending promise chain run. */
async function settle (): Promise<void> {
  for (let i = 0; i < 5; i++) {
    await new Promise(resolve => setImmediate(resolve))
  }
}

type DialBehaviour = 'connect' | 'fail' | 'hang'

interface FakeConnection {
  id: string
  remotePeer: PeerId
  remoteAddr: Multiaddr
  direction: 'inbound' | 'outbound'
  status: 'open' | 'closed'
  streams: []
  close(): Promise<void>
  abort(err: Error): void
}

let connectionCounter = 0

/** The part of libp2p's connection manager the dialer uses, with dials the test decides. */
class FakeConnectionManager {
  // BOUNDED: the connections a test makes
  connections: FakeConnection[] = []
  maxConnections = 300
  // BOUNDED: the dials a test makes
  readonly dials: Array<{ peer: string, at: number }> = []
  inFlight = 0
  maxInFlight = 0
  behaviour: (peer: PeerId) => DialBehaviour = () => 'connect'
  private readonly events: TypedEventEmitter<Libp2pEvents>
  private readonly clock: FakeClock
  // BOUNDED: the peers a test dials, with the address the dial used
  readonly addresses = new Map<string, Multiaddr>()

  constructor (events: TypedEventEmitter<Libp2pEvents>, clock: FakeClock) {
    this.events = events
    this.clock = clock
  }

  getConnections (peer?: PeerId): FakeConnection[] {
    return peer == null ? [...this.connections] : this.connections.filter(c => c.remotePeer.equals(peer))
  }

  getMaxConnections (): number {
    return this.maxConnections
  }

  async openConnection (peer: PeerId, options: AbortOptions = {}): Promise<FakeConnection> {
    this.dials.push({ peer: peer.toString(), at: this.clock.time })
    this.inFlight++
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight)
    try {
      const behaviour = this.behaviour(peer)
      if (behaviour === 'hang') {
        await new Promise((_resolve, reject) => {
          options.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true })
        })
      }
      await settle()
      if (behaviour === 'fail') {
        throw new Error('dial failed')
      }
      return this.add(peer, 'outbound', this.addresses.get(peer.toString()))
    } finally {
      this.inFlight--
    }
  }

  /** A connection that appeared by some other way (an inbound one, a request's). */
  add (peer: PeerId, direction: 'inbound' | 'outbound', remoteAddr = multiaddr('/memory/fake')): FakeConnection {
    const connection: FakeConnection = {
      id: `c${++connectionCounter}`,
      remotePeer: peer,
      remoteAddr,
      direction,
      status: 'open',
      streams: [],
      close: async () => { this.close(connection) },
      abort: () => { this.close(connection) }
    }
    this.connections.push(connection)
    this.events.safeDispatchEvent('connection:open', { detail: connection as unknown as Connection })
    return connection
  }

  close (connection: FakeConnection): void {
    this.connections = this.connections.filter(c => c !== connection)
    connection.status = 'closed'
    this.events.safeDispatchEvent('connection:close', { detail: connection as unknown as Connection })
  }
}

/** A peer store that keeps only tags, with libp2p's merge semantics (undefined removes). */
class FakePeerStore {
  // BOUNDED: the peers a test tags
  readonly tags = new Map<string, Map<string, { value: number, ttl?: number }>>()
  tagWrites = 0

  async merge (peer: PeerId, data: { tags?: Record<string, { value?: number, ttl?: number } | undefined> }): Promise<void> {
    for (const [name, tag] of Object.entries(data.tags ?? {})) {
      this.tagWrites++
      const tags = this.tags.get(peer.toString()) ?? new Map()
      if (tag == null) {
        tags.delete(name)
      } else {
        tags.set(name, { value: tag.value ?? 0, ttl: tag.ttl })
      }
      this.tags.set(peer.toString(), tags)
    }
  }

  tagged (peer: PeerId): boolean {
    return this.tags.get(peer.toString())?.has(DIAL_TAG) ?? false
  }
}

/** A peer at a public address in `subnet` (three bytes), or on memory when none is given. */
function peer (subnet?: string, host = 1 + random.int(250)): PeerInfo {
  return { id: fakePeerId(random), multiaddrs: [subnet == null ? multiaddr('/memory/p') : tcpAddr(`${subnet}.${host}`)] }
}

/**
 * The candidates as the service's `randomNodes()` hands them out when the table never
 * changes: every node, then (a random lookup that finds nothing new) every node again.
 */
class Candidates {
  peers: PeerInfo[]
  pulls = 0
  wraps = 0
  streams = 0

  constructor (peers: PeerInfo[]) {
    this.peers = peers
  }

  readonly stream = (options: AbortOptions): AsyncGenerator<PeerInfo> => {
    this.streams++
    const self = this
    return (async function * () {
      for (let i = 0; i < 1_000_000 && options.signal?.aborted !== true; i++) {
        if (self.peers.length === 0) {
          await new Promise(resolve => setImmediate(resolve))
          continue
        }
        for (const p of [...self.peers]) {
          self.pulls++
          yield p
        }
        self.wraps++
      }
    })()
  }
}

interface Harness {
  dialer: AutoDialer
  events: TypedEventEmitter<Libp2pEvents>
  clock: FakeClock
  cm: FakeConnectionManager
  store: FakePeerStore
  candidates: Candidates
  self: PeerId
}

const running: AutoDialer[] = []

function harness (peers: PeerInfo[], init: Partial<AutoDialerInit> = {}): Harness {
  const clock = new FakeClock()
  const events = new TypedEventEmitter<Libp2pEvents>()
  const cm = new FakeConnectionManager(events, clock)
  for (const p of peers) {
    const first = p.multiaddrs[0]
    if (first != null) {
      cm.addresses.set(p.id.toString(), first)
    }
  }
  const store = new FakePeerStore()
  const candidates = new Candidates(peers)
  const self = fakePeerId(random)
  const components: AutoDialerComponents = {
    connectionManager: cm as unknown as ConnectionManager,
    peerStore: store as unknown as PeerStore,
    events,
    logger: defaultLogger()
  }
  const dialer = new AutoDialer(components, {
    enabled: true,
    minConnections: 16,
    maxParallelDials: 4,
    dialHistoryExpiration: 35_000,
    self,
    candidates: candidates.stream,
    sleep: clock.sleep,
    now: clock.now,
    dialTimeout: 5000,
    allowLan: true,
    maxIdleDelay: 30 * 60_000,
    ...init
  })
  running.push(dialer)
  return { dialer, events, clock, cm, store, candidates, self }
}

describe('AutoDialer', function () {
  this.timeout(60_000)

  afterEach(async () => {
    await Promise.all(running.splice(0).map(async d => { await d.stop() }))
  })

  describe('the target', () => {
    it('dials until minConnections outbound connections are its own, then stops', async () => {
      const h = harness(Array.from({ length: 10 }, () => peer()), { minConnections: 3 })
      h.dialer.start()
      await h.clock.advance(1000)
      assert.equal(h.dialer.outbound, 3)
      assert.equal(h.cm.dials.length, 3)
      await h.clock.advance(60_000)
      assert.equal(h.cm.dials.length, 3, 'no dial past the target')
    })

    it('does not count inbound connections: they cannot fill the target', async () => {
      const h = harness(Array.from({ length: 10 }, () => peer()), { minConnections: 3 })
      for (let i = 0; i < 20; i++) {
        h.cm.add(fakePeerId(random), 'inbound')
      }
      h.dialer.start()
      await h.clock.advance(1000)
      assert.equal(h.dialer.outbound, 3)
      assert.equal(h.cm.dials.length, 3)
    })

    it('does not count outbound connections it did not dial or adopt (discovery\'s requests, the user\'s)', async () => {
      const h = harness(Array.from({ length: 10 }, () => peer()), { minConnections: 3 })
      for (let i = 0; i < 5; i++) {
        h.cm.add(fakePeerId(random), 'outbound')
      }
      h.dialer.start()
      await h.clock.advance(1000)
      assert.equal(h.cm.dials.length, 3)
    })

    it('dials again when one of its connections closes', async () => {
      const h = harness(Array.from({ length: 10 }, () => peer()), { minConnections: 3 })
      h.dialer.start()
      await h.clock.advance(1000)
      h.cm.close(h.dialer.dialedConnections()[0] as unknown as FakeConnection)
      await h.clock.advance(1000)
      assert.equal(h.cm.dials.length, 4)
      assert.equal(h.dialer.outbound, 3)
    })

    it('keeps at most maxParallelDials dials in flight', async () => {
      const h = harness(Array.from({ length: 20 }, () => peer()), { maxParallelDials: 2 })
      h.cm.behaviour = () => 'hang'
      h.dialer.start()
      await h.clock.advance(1000)
      assert.equal(h.cm.maxInFlight, 2)
      assert.equal(h.cm.inFlight, 2)
    })

    it('stays under the connection manager\'s maxConnections, in-flight dials included', async () => {
      const h = harness(Array.from({ length: 20 }, () => peer()))
      h.cm.maxConnections = 6
      for (let i = 0; i < 4; i++) {
        h.cm.add(fakePeerId(random), 'inbound')
      }
      h.dialer.start()
      await h.clock.advance(10_000)
      assert.equal(h.cm.dials.length, 2)
      assert.equal(h.cm.connections.length, 6)
    })
  })

  describe('skipping', () => {
    it('never dials itself, a peer connected in either direction, or one being dialed', async () => {
      const slow = peer()
      const inbound = peer()
      const outbound = peer()
      const h = harness([], { minConnections: 10 })
      h.candidates.peers = [{ id: h.self, multiaddrs: [multiaddr('/memory/self')] }, inbound, outbound, slow, slow]
      h.cm.add(inbound.id, 'inbound')
      h.cm.add(outbound.id, 'outbound')
      h.cm.behaviour = p => p.equals(slow.id) ? 'hang' : 'connect'
      h.dialer.start()
      await h.clock.advance(1000)
      assert.deepEqual(h.cm.dials.map(d => d.peer), [slow.id.toString()])
      assert.ok(h.dialer.stats.skipped >= 4, `skipped ${h.dialer.stats.skipped}`)
    })

    it('does not dial a peer again within dialHistoryExpiration, and does after it', async () => {
      const only = peer()
      const h = harness([only], { minConnections: 1 })
      h.dialer.start()
      await h.clock.advance(100)
      h.cm.close(h.dialer.dialedConnections()[0] as unknown as FakeConnection)
      await h.clock.advance(30_000)
      assert.equal(h.cm.dials.length, 1, 'redialed within the dial history')
      await h.clock.advance(40_000)
      assert.equal(h.cm.dials.length, 2)
    })
  })

  describe('backoff', () => {
    it('waits longer after every failed dial of a peer: 35 s doubling, up to 30 minutes', async () => {
      const dead = peer()
      const h = harness([dead], { minConnections: 1 })
      h.cm.behaviour = () => 'fail'
      h.dialer.start()
      // a busy table: nodes keep arriving, so the candidates are pulled again every second
      // or so and only the backoff decides when the dead peer is dialed again
      for (let s = 0; s < 2 * 60 * 60; s++) {
        h.dialer.nodeAdded()
        await h.clock.advance(1000)
      }
      const gaps = h.cm.dials.slice(1).map((d, i) => d.at - (h.cm.dials[i] as { at: number }).at)
      assert.ok(gaps.length >= 7, `${h.cm.dials.length} dials`)
      for (const [i, gap] of gaps.entries()) {
        const wait = Math.min(35_000 * 2 ** i, MAX_DIAL_BACKOFF)
        assert.ok(gap >= wait && gap <= wait + 3000, `gap ${i}: ${gap} ms, expected ${wait} ms`)
      }
      assert.equal(h.dialer.stats.failed, h.cm.dials.length)
    })

    it('starts the wait over after a dial that connected', async () => {
      const anchor = peer()
      const flaky = peer()
      const h = harness([anchor, flaky], { minConnections: 2 })
      let fail = true
      h.cm.behaviour = p => p.equals(flaky.id) && fail ? 'fail' : 'connect'
      h.dialer.start()
      await h.clock.advance(6 * 60_000)
      assert.ok(h.dialer.stats.failed >= 3, `${h.dialer.stats.failed} failed dials`)
      fail = false
      await h.clock.advance(30 * 60_000)
      assert.equal(h.dialer.outbound, 2)
      fail = true
      const connection = h.dialer.dialedConnections().find(c => c.remotePeer.equals(flaky.id))
      h.cm.close(connection as unknown as FakeConnection)
      const closedAt = h.clock.time
      await h.clock.advance(150_000)
      // at once, then 35 s later (plus the idle wait), not 35 s × 2^(earlier failures)
      const after = h.cm.dials.filter(d => d.peer === flaky.id.toString() && d.at >= closedAt)
      assert.equal(after.length, 2)
    })

    it('remembers at most MAX_DIAL_HISTORY peers', async () => {
      const many = Array.from({ length: MAX_DIAL_HISTORY + 200 }, () => peer())
      const h = harness(many, { maxParallelDials: 50 })
      h.cm.behaviour = () => 'fail'
      h.dialer.start()
      await waitFor(async () => { await h.clock.advance(1000); return h.cm.dials.length >= many.length }, 'every peer dialed once', 30_000)
      const history = (h.dialer as unknown as { history: Map<string, unknown> }).history
      assert.ok(history.size <= MAX_DIAL_HISTORY, `history of ${history.size}`)
    })
  })

  describe('subnet diversity', () => {
    it('dials at most 2 peers of one /24', async () => {
      const crowded = Array.from({ length: 6 }, (_, i) => peer('51.15.1', 10 + i))
      const other = Array.from({ length: 3 }, (_, i) => peer('51.15.2', 10 + i))
      const h = harness([...crowded, ...other], { minConnections: 10 })
      h.dialer.start()
      await h.clock.advance(1000)
      const dialed = new Set(h.cm.dials.map(d => d.peer))
      assert.equal(crowded.filter(p => dialed.has(p.id.toString())).length, 2)
      assert.equal(other.filter(p => dialed.has(p.id.toString())).length, 2)
      assert.ok(h.dialer.stats.subnetFull >= 5)
    })

    it('dials at most 2 peers of one IPv6 /48', async () => {
      const crowded = Array.from({ length: 5 }, (_, i) => ({ id: fakePeerId(random), multiaddrs: [tcpAddr(`2001:db8:1:${i + 1}::1`)] }))
      const h = harness(crowded, { minConnections: 10 })
      h.dialer.start()
      await h.clock.advance(1000)
      assert.equal(h.cm.dials.length, 2)
    })

    it('counts loopback peers with allowLan false', async () => {
      const local = Array.from({ length: 5 }, (_, i) => peer('127.0.0', 10 + i))
      const h = harness(local, { minConnections: 10, allowLan: false })
      h.dialer.start()
      await h.clock.advance(1000)
      assert.equal(h.cm.dials.length, 2)
    })

    it('exempts loopback and LAN peers with allowLan true', async () => {
      const local = [...Array.from({ length: 4 }, (_, i) => peer('127.0.0', 10 + i)), ...Array.from({ length: 4 }, (_, i) => peer('192.168.1', 10 + i))]
      const h = harness(local, { minConnections: 10, allowLan: true })
      h.dialer.start()
      await h.clock.advance(1000)
      assert.equal(h.cm.dials.length, 8)
    })

    it('frees a subnet slot when a dialed connection closes or a dial fails', async () => {
      const crowded = Array.from({ length: 4 }, (_, i) => peer('51.15.1', 10 + i))
      const h = harness(crowded, { minConnections: 10 })
      const [first] = crowded
      h.cm.behaviour = p => p.equals(first!.id) ? 'fail' : 'connect'
      h.dialer.start()
      await h.clock.advance(5000)
      assert.equal(h.dialer.outbound, 2, 'a failed dial gave its slot back')
      h.cm.close(h.dialer.dialedConnections()[0] as unknown as FakeConnection)
      await h.clock.advance(5000)
      assert.equal(h.dialer.outbound, 2, 'a closed connection gave its slot back')
    })
  })

  describe('idle candidate pulls', () => {
    it('backs off pulling candidates when none is new, 1 s doubling up to maxIdleDelay', async () => {
      // a 6-node network: the target of 16 can never be met, every candidate is connected
      const five = Array.from({ length: 5 }, () => peer())
      const h = harness(five, { maxIdleDelay: 60_000 })
      h.dialer.start()
      await h.clock.advance(60_000)
      assert.equal(h.dialer.outbound, 5)
      // 1 + 2 + 4 + 8 + 16 + 32 s: six waits in the first minute, each one wrap (one random lookup)
      assert.ok(h.candidates.wraps <= 7, `${h.candidates.wraps} wraps in a minute`)
      const before = h.candidates.wraps
      await h.clock.advance(10 * 60_000)
      // capped at maxIdleDelay: one wrap a minute
      assert.ok(h.candidates.wraps - before <= 11 && h.candidates.wraps - before >= 9, `${h.candidates.wraps - before} wraps in 10 minutes`)
    })

    it('stops a candidate stream that yields nothing (lookups into an empty table) and waits before the next', async () => {
      const h = harness([])
      let lookups = 0
      const clock = h.clock
      // the service's randomNodes() with an empty table whose seeds are gone: a lookup a
      // second that never finds anyone
      ;(h.dialer as unknown as { init: AutoDialerInit }).init.candidates = (options: AbortOptions) => (async function * () {
        for (let i = 0; i < 1_000_000; i++) {
          await clock.sleep(1000, options)
          lookups++
        }
        yield * []
      })()
      h.dialer.start()
      await h.clock.advance(10 * 60_000)
      // 600 without the limit; with it, 15 per pull and pulls ever further apart
      assert.ok(lookups < 150, `${lookups} lookups in 10 minutes`)
      assert.ok(h.dialer.stats.idleWaits >= 5)
    })

    it('starts the wait over at 1 s when a node enters the table', async () => {
      const five = Array.from({ length: 5 }, () => peer())
      const h = harness(five)
      h.dialer.start()
      await h.clock.advance(5 * 60_000)
      const newcomer = peer()
      h.candidates.peers = [...five, newcomer]
      await h.clock.advance(10_000)
      assert.ok(!h.cm.dials.some(d => d.peer === newcomer.id.toString()), 'it should still be waiting')
      h.dialer.nodeAdded()
      await h.clock.advance(1000)
      assert.ok(h.cm.dials.some(d => d.peer === newcomer.id.toString()), 'the newcomer was not dialed')
    })

    it('starts the wait over at 1 s when a dialed connection closes', async () => {
      const five = Array.from({ length: 5 }, () => peer())
      const h = harness(five, { dialHistoryExpiration: 0 })
      h.dialer.start()
      await h.clock.advance(5 * 60_000)
      const dials = h.cm.dials.length
      h.cm.close(h.dialer.dialedConnections()[0] as unknown as FakeConnection)
      await h.clock.advance(3000)
      assert.equal(h.cm.dials.length, dials + 1)
    })
  })

  describe('recovery', () => {
    it('dials its way back from the table after losing every dialed connection', async () => {
      const peers = Array.from({ length: 4 }, () => peer())
      const h = harness(peers, { minConnections: 4 })
      h.dialer.start()
      await h.clock.advance(1000)
      assert.equal(h.dialer.outbound, 4)
      // every peer restarts: the connections drop, and the first redials fail
      let down = true
      h.cm.behaviour = () => down ? 'fail' : 'connect'
      h.clock.time += 60_000
      for (const c of h.dialer.dialedConnections()) {
        h.cm.close(c as unknown as FakeConnection)
      }
      await h.clock.advance(20 * 60_000)
      assert.equal(h.dialer.outbound, 0)
      assert.ok(h.dialer.stats.recoveries >= 1)
      const streams = h.candidates.streams
      down = false
      await h.clock.advance(30 * 60_000)
      assert.equal(h.dialer.outbound, 4, 'not every peer was dialed again')
      assert.ok(streams >= 2, 'the candidate stream was not started over')
    })

    it('forgets failure backoffs when the last dialed connection closes', async () => {
      const peers = Array.from({ length: 3 }, () => peer())
      const [kept, ...dead] = peers
      const h = harness(peers, { minConnections: 3 })
      let down = true
      h.cm.behaviour = p => p.equals(kept!.id) || !down ? 'connect' : 'fail'
      h.dialer.start()
      // the dead peers fail often enough to wait many minutes
      await h.clock.advance(20 * 60_000)
      assert.equal(h.dialer.outbound, 1)
      down = false
      h.cm.close(h.dialer.dialedConnections()[0] as unknown as FakeConnection)
      await h.clock.advance(5000)
      assert.equal(h.dialer.outbound, 1 + dead.length, 'the backed-off peers were not redialed at once')
    })
  })

  describe('adoption and claiming', () => {
    it('adopts an outbound request connection while below the target', async () => {
      const h = harness([], { minConnections: 2 })
      h.dialer.start()
      const a = h.cm.add(fakePeerId(random), 'outbound')
      const b = h.cm.add(fakePeerId(random), 'outbound')
      const c = h.cm.add(fakePeerId(random), 'outbound')
      assert.equal(h.dialer.adopt(a as unknown as Connection), true)
      assert.equal(h.dialer.adopt(a as unknown as Connection), true, 'adopted once, kept')
      assert.equal(h.dialer.adopt(b as unknown as Connection), true)
      assert.equal(h.dialer.adopt(c as unknown as Connection), false, 'past the target')
      assert.equal(h.dialer.outbound, 2)
      assert.equal(h.dialer.stats.adopted, 2)
      await settle()
      assert.ok(h.store.tagged(a.remotePeer))
    })

    it('never adopts an inbound connection, a closed one, or one past its subnet\'s limit', async () => {
      const h = harness([], { minConnections: 10 })
      h.dialer.start()
      const inbound = h.cm.add(fakePeerId(random), 'inbound')
      assert.equal(h.dialer.adopt(inbound as unknown as Connection), false)
      const closed = h.cm.add(fakePeerId(random), 'outbound')
      closed.status = 'closed'
      assert.equal(h.dialer.adopt(closed as unknown as Connection), false)
      const crowded = [1, 2, 3].map(i => h.cm.add(fakePeerId(random), 'outbound', multiaddr(`/ip4/51.15.1.${i}/tcp/1`)))
      assert.deepEqual(crowded.map(c => h.dialer.adopt(c as unknown as Connection)), [true, true, false])
    })

    it('never adopts a second connection of a pair: the peer dialed us meanwhile', async () => {
      const h = harness([], { minConnections: 10 })
      h.dialer.start()
      const id = fakePeerId(random)
      h.cm.add(id, 'inbound')
      const second = h.cm.add(id, 'outbound')
      assert.equal(h.dialer.adopt(second as unknown as Connection), false)
      assert.equal(h.dialer.outbound, 0)
    })

    it('claims a candidate connected only through a discovery request connection', async () => {
      const requested = peer()
      const inbound = peer()
      const claimed: string[] = []
      const h = harness([requested, inbound], {
        minConnections: 4,
        claimRequestConnection: c => { claimed.push(c.id); return true }
      })
      const request = h.cm.add(requested.id, 'outbound')
      h.cm.add(inbound.id, 'inbound')
      h.dialer.start()
      await h.clock.advance(1000)
      assert.deepEqual(claimed, [request.id])
      assert.equal(h.dialer.stats.claimed, 1)
      assert.equal(h.dialer.outbound, 1)
      assert.equal(h.cm.dials.length, 0)
    })

    it('skips a candidate whose outbound connection the client does not hand over', async () => {
      const other = peer()
      const h = harness([other], { minConnections: 4, claimRequestConnection: () => false })
      h.cm.add(other.id, 'outbound')
      h.dialer.start()
      await h.clock.advance(1000)
      assert.equal(h.dialer.outbound, 0)
      assert.equal(h.cm.dials.length, 0)
    })
  })

  describe('bootnodes', () => {
    /** A harness whose first `count` peers are bootnodes. */
    function withBootnodes (peers: PeerInfo[], count: number, init: Partial<AutoDialerInit> = {}): Harness {
      const bootnodes = new Set(peers.slice(0, count).map(p => p.id.toString()))
      return harness(peers, { isBootnode: id => bootnodes.has(id.toString()), ...init })
    }

    it('passes bootnodes over while other candidates fill the target', async () => {
      const peers = Array.from({ length: 12 }, () => peer())
      const h = withBootnodes(peers, 3, { minConnections: 4 })
      h.dialer.start()
      await h.clock.advance(1000)
      assert.equal(h.dialer.outbound, 4)
      const boot = new Set(peers.slice(0, 3).map(p => p.id.toString()))
      assert.deepEqual(h.cm.dials.filter(d => boot.has(d.peer)), [])
      assert.equal(h.dialer.stats.bootnodesDeferred, 3)
    })

    it('dials them once a round of candidates leaves room: a network smaller than the target', async () => {
      const peers = Array.from({ length: 5 }, () => peer())
      const h = withBootnodes(peers, 2)
      h.dialer.start()
      await h.clock.advance(5000)
      assert.equal(h.dialer.outbound, 5)
      assert.deepEqual(new Set(h.cm.dials.map(d => d.peer)), new Set(peers.map(p => p.id.toString())))
      // the two other peers came first
      assert.deepEqual(h.cm.dials.slice(0, 3).map(d => d.peer), peers.slice(2).map(p => p.id.toString()))
    })

    it('holds bootnodes only within the target, so none is dialed, shed and dialed again', async () => {
      const peers = Array.from({ length: 5 }, () => peer())
      const h = withBootnodes(peers, 2, { minConnections: 4 })
      h.dialer.start()
      await h.clock.advance(10 * 60_000)
      assert.equal(h.dialer.outbound, 4)
      assert.equal(h.cm.dials.length, 4)
      assert.equal(h.dialer.stats.shed, 0)
    })

    it('adopts a young node\'s request connection to a bootnode without counting it, and sheds it once the target is met', async () => {
      const peers = Array.from({ length: 4 }, () => peer())
      const h = withBootnodes(peers, 1, { minConnections: 3 })
      h.dialer.start()
      const request = h.cm.add(peers[0]!.id, 'outbound')
      assert.equal(h.dialer.adopt(request as unknown as Connection), true)
      await h.clock.advance(5000)
      assert.equal(request.status, 'closed')
      assert.equal(h.dialer.outbound, 3)
      assert.deepEqual(new Set(h.cm.dials.map(d => d.peer)), new Set(peers.slice(1).map(p => p.id.toString())))
    })

    it('adopts a bootnode\'s connection only while the target leaves room for it, bootnodes included', async () => {
      // two bootnodes and two other peers: the target of 3 takes one bootnode
      const peers = Array.from({ length: 4 }, () => peer())
      const h = withBootnodes(peers, 2, { minConnections: 3 })
      h.dialer.start()
      await h.clock.advance(5000)
      assert.equal(h.dialer.outbound, 3)
      const idle = peers.slice(0, 2).find(p => h.cm.getConnections(p.id).length === 0)
      assert.ok(idle != null)
      const request = h.cm.add(idle.id, 'outbound')
      assert.equal(h.dialer.adopt(request as unknown as Connection), false)
    })

    it('sheds a bootnode it holds once the target is met without it', async () => {
      const peers = Array.from({ length: 3 }, () => peer())
      const h = withBootnodes(peers, 1, { minConnections: 3, dialHistoryExpiration: 0 })
      h.dialer.start()
      await h.clock.advance(5000)
      const held = h.dialer.dialedConnections().find(c => c.remotePeer.equals(peers[0]?.id))
      assert.ok(held != null, 'the bootnode was needed while the network was small')
      const newcomer = peer()
      h.candidates.peers = [...peers, newcomer]
      h.dialer.nodeAdded()
      await h.clock.advance(2000)
      assert.equal(held.status, 'closed')
      assert.equal(h.dialer.stats.shed, 1)
      assert.deepEqual(new Set(h.dialer.dialedConnections().map(c => c.remotePeer.toString())), new Set([...peers.slice(1), newcomer].map(p => p.id.toString())))
    })

    it('sheds bootnodes first when an overloaded node shrinks its target', async () => {
      let load = 0
      const peers = Array.from({ length: 12 }, () => peer())
      const h = withBootnodes(peers, 1, { minConnections: 12, load: () => load })
      // the bootnode is dialed while the network is small, and so is among the oldest
      h.candidates.peers = peers.slice(0, 2)
      h.dialer.start()
      await h.clock.advance(5000)
      assert.equal(h.dialer.outbound, 2)
      h.candidates.peers = peers
      h.dialer.nodeAdded()
      await h.clock.advance(60_000)
      assert.equal(h.dialer.outbound, 12, 'the bootnode was held to meet the target')
      load = 1
      // below its target (11 peers but the bootnode), the dialer reads the load as its idle
      // waits end, doubling apart
      for (let i = 0; i < 10 && h.dialer.target === 12; i++) {
        await h.clock.advance(60_000)
      }
      assert.ok(h.dialer.target < 12)
      assert.ok(!h.dialer.dialedConnections().some(c => c.remotePeer.equals(peers[0]?.id)), 'the bootnode was not shed first')
      assert.equal(h.dialer.outbound, h.dialer.target)
    })
  })

  describe('tagging', () => {
    it('tags dialed peers, renews the tag while connected, and removes it on close', async () => {
      const h = harness([peer()], { minConnections: 1 })
      h.dialer.start()
      await h.clock.advance(1000)
      const [connection] = h.dialer.dialedConnections()
      assert.ok(connection != null)
      assert.equal(h.store.tags.get(connection.remotePeer.toString())?.get(DIAL_TAG)?.value, DIAL_TAG_VALUE)
      const writes = h.store.tagWrites
      await h.clock.advance(DIAL_TAG_RENEW_INTERVAL * 3)
      assert.equal(h.store.tagWrites - writes, 3, 'the tag was not renewed')
      h.cm.close(connection as unknown as FakeConnection)
      await settle()
      assert.equal(h.store.tagged(connection.remotePeer), false)
    })
  })

  describe('an overloaded event loop', () => {
    it('dials only up to MIN_DIAL_TARGET while the service says its loop is overloaded, and goes on once it calms', async () => {
      let calm: () => void = () => {}
      let gate = new Promise<void>(resolve => { calm = resolve })
      let waits = 0
      const h = harness(Array.from({ length: MIN_DIAL_TARGET + 4 }, () => peer()), {
        minConnections: MIN_DIAL_TARGET + 2,
        whenCalm: async () => {
          waits++
          await gate
        }
      })
      h.dialer.start()
      await h.clock.advance(60_000)
      assert.ok(waits > 0, 'the dialer asked before its pull past the floor')
      assert.equal(h.candidates.pulls, MIN_DIAL_TARGET, 'no pull past the floor')
      assert.equal(h.cm.dials.length, MIN_DIAL_TARGET)
      calm()
      gate = Promise.resolve()
      await h.clock.advance(1000)
      assert.equal(h.dialer.outbound, MIN_DIAL_TARGET + 2)
      assert.equal(h.cm.dials.length, MIN_DIAL_TARGET + 2)
    })

    describe('the dial target follows the load', () => {
      /** A dialer holding `count` dialed connections of `candidates`, whose load the test sets. */
      async function loaded (count: number, candidates = 20): Promise<Harness & { load: { value: number } }> {
        const load = { value: 0 }
        const h = harness(Array.from({ length: candidates }, () => peer()), { minConnections: count, load: () => load.value })
        h.dialer.start()
        for (let i = 0; i < 20 && h.dialer.outbound < count; i++) {
          await h.clock.advance(1000)
        }
        assert.equal(h.dialer.outbound, count)
        return { ...h, load }
      }

      it('halves the target at most every 10 s once overloaded for 30 s, down to MIN_DIAL_TARGET, closing its newest connections', async () => {
        const h = await loaded(4 * MIN_DIAL_TARGET, 5 * MIN_DIAL_TARGET)
        const oldest = h.dialer.dialedConnections().slice(0, MIN_DIAL_TARGET)
        h.load.value = 0.95
        await h.clock.advance(20_000)
        assert.equal(h.dialer.target, 4 * MIN_DIAL_TARGET, 'a short overload changes nothing')
        await h.clock.advance(16_000)
        assert.equal(h.dialer.target, 2 * MIN_DIAL_TARGET)
        assert.equal(h.dialer.outbound, 2 * MIN_DIAL_TARGET, 'the surplus closed')
        await h.clock.advance(11_000)
        assert.equal(h.dialer.target, MIN_DIAL_TARGET, 'halved again once 10 s passed')
        await h.clock.advance(60_000)
        assert.equal(h.dialer.target, MIN_DIAL_TARGET, 'never below the floor')
        assert.equal(h.dialer.outbound, MIN_DIAL_TARGET)
        assert.deepEqual(h.dialer.dialedConnections(), oldest, 'the longest-held connections stay')
        assert.equal(h.dialer.stats.shed, 3 * MIN_DIAL_TARGET)
        assert.equal(h.cm.dials.length, 4 * MIN_DIAL_TARGET, 'nothing dialed while it shrank')
        for (const connection of h.dialer.dialedConnections()) {
          assert.ok(h.store.tagged(connection.remotePeer))
        }
      })

      it('starts the 30 s over after a reading below 0.9', async () => {
        const h = await loaded(2 * MIN_DIAL_TARGET)
        for (let i = 0; i < 3; i++) {
          h.load.value = 0.95
          await h.clock.advance(25_000)
          h.load.value = 0.8
          await h.clock.advance(6000)
        }
        assert.equal(h.dialer.target, 2 * MIN_DIAL_TARGET)
        assert.equal(h.dialer.stats.targetShrunk, 0)
      })

      it('leaves the target alone between half and fully busy, and grows it by one every 10 s below half', async () => {
        const h = await loaded(2 * MIN_DIAL_TARGET)
        h.load.value = 0.95
        await h.clock.advance(36_000)
        assert.equal(h.dialer.target, MIN_DIAL_TARGET)
        h.load.value = 0.7
        await h.clock.advance(120_000)
        assert.equal(h.dialer.target, MIN_DIAL_TARGET, 'busy, not overloaded: no change')
        h.load.value = 0.2
        await h.clock.advance(5000)
        assert.equal(h.dialer.target, MIN_DIAL_TARGET + 1)
        await h.clock.advance(10_000)
        assert.equal(h.dialer.target, MIN_DIAL_TARGET + 2)
        assert.equal(h.dialer.outbound, MIN_DIAL_TARGET + 2, 'it dials up to the grown target')
        await h.clock.advance(5 * 60_000)
        assert.equal(h.dialer.target, 2 * MIN_DIAL_TARGET, 'never past minConnections')
        assert.equal(h.dialer.outbound, 2 * MIN_DIAL_TARGET)
      })

      it('does not redial a shed peer within dialHistoryExpiration', async () => {
        // no other candidate: the shed peers are all it could dial
        const h = await loaded(MIN_DIAL_TARGET + 4, MIN_DIAL_TARGET + 4)
        // the shedding comes 30 s after the first overloaded reading at the earliest
        const earliestShed = h.clock.time + 30_000
        h.load.value = 0.95
        await h.clock.advance(36_000)
        assert.equal(h.dialer.target, MIN_DIAL_TARGET)
        const kept = new Set(h.dialer.dialedConnections().map(c => c.remotePeer.toString()))
        const shed = h.cm.dials.map(d => d.peer).filter(p => !kept.has(p))
        assert.equal(shed.length, 4)
        h.load.value = 0
        await h.clock.advance(31_000)
        assert.ok(h.dialer.target > MIN_DIAL_TARGET, 'the target grew back')
        const first = MIN_DIAL_TARGET + 4
        assert.deepEqual(h.cm.dials.slice(first).filter(d => d.at < earliestShed + 35_000), [], 'none of the shed peers within 35 s')
        await h.clock.advance(60_000)
        assert.ok(h.cm.dials.slice(first).some(d => shed.includes(d.peer)), 'redialed after')
      })

      it('keeps minConnections whatever the load when it has no gauge', async () => {
        const h = harness(Array.from({ length: 20 }, () => peer()), { minConnections: 8 })
        h.dialer.start()
        await h.clock.advance(60_000)
        assert.equal(h.dialer.target, 8)
        assert.equal(h.dialer.outbound, 8)
      })
    })

    it('stops cleanly when stop() comes while it waits for calm, its candidates gone with the service', async () => {
      let stopped = false
      const h = harness(Array.from({ length: 10 }, () => peer()), {
        minConnections: 3,
        whenCalm: async ({ signal }) => {
          await new Promise(resolve => { signal?.addEventListener('abort', resolve, { once: true }) })
        },
        candidates: () => (async function * () {
          if (stopped) {
            throw new NotStartedError('the service stopped')
          }
          yield * []
        })()
      })
      h.dialer.start()
      await h.clock.advance(1000)
      stopped = true
      const unhandled: unknown[] = []
      const onUnhandled = (err: unknown): void => { unhandled.push(err) }
      process.on('unhandledRejection', onUnhandled)
      try {
        await h.dialer.stop()
        await new Promise(resolve => setTimeout(resolve, 50))
      } finally {
        process.off('unhandledRejection', onUnhandled)
      }
      assert.deepEqual(unhandled, [])
      assert.equal(h.cm.dials.length, 0)
    })
  })

  describe('with real libp2p nodes', () => {
    const nodes = new TestNodes()
    afterEach(async () => { await nodes.stop() })

    async function realDialer (node: TestNode<{ capture: ComponentsCapture }>, candidates: PeerInfo[], init: Partial<AutoDialerInit> = {}): Promise<AutoDialer> {
      const list = new Candidates(candidates)
      const dialer = new AutoDialer(node.services.capture.components, {
        enabled: true,
        minConnections: 2,
        maxParallelDials: 4,
        dialHistoryExpiration: 35_000,
        self: node.peerId,
        candidates: list.stream,
        sleep: async (ms, options) => {
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(resolve, Math.min(ms, 200))
            options.signal?.addEventListener('abort', () => { clearTimeout(timer); reject(options.signal?.reason) }, { once: true })
          })
        },
        now: () => Date.now(),
        dialTimeout: 5000,
        allowLan: true,
        maxIdleDelay: 1000,
        ...init
      })
      running.push(dialer)
      dialer.start()
      return dialer
    }

    it('dials past inbound connections, tags what it dialed with a value above theirs, and untags on close', async () => {
      const [me, ...others] = await nodes.createMany<{ capture: ComponentsCapture }>(7, { services: { capture: captureComponents() } })
      const [in1, in2, in3, out1, out2, out3] = others as Array<TestNode<{ capture: ComponentsCapture }>>
      for (const n of [in1, in2, in3]) {
        await connect(n!, me!)
      }
      const dialer = await realDialer(me!, [in1!, in2!, in3!, out1!, out2!, out3!].map(peerInfoOf))
      await waitFor(() => dialer.outbound === 2, 'two dialed connections', 20_000)
      const dialed = dialer.dialedConnections()
      assert.ok(dialed.every(c => c.direction === 'outbound' && [out1, out2, out3].some(n => n!.peerId.equals(c.remotePeer))))
      // one connection per pair: the inbound peers were not dialed
      for (const n of [in1, in2, in3]) {
        assert.equal(me!.getConnections(n!.peerId).length, 1)
      }
      const first = dialed[0]!
      await waitFor(async () => (await me!.peerStore.get(first.remotePeer)).tags.get(DIAL_TAG)?.value === DIAL_TAG_VALUE, 'the tag', 5000)
      const inboundTags = (await me!.peerStore.get(in1!.peerId)).tags
      assert.equal(inboundTags.size, 0)
      await first.close()
      await waitFor(async () => !(await me!.peerStore.get(first.remotePeer)).tags.has(DIAL_TAG), 'the tag to go', 5000)
      await waitFor(() => dialer.outbound === 2, 'a third peer dialed', 20_000)
    })

    it('keeps as dialed a connection its dial opened after the dial timed out', async () => {
      const [me, peer] = await nodes.createMany<{ capture: ComponentsCapture }>(2, { services: { capture: captureComponents() } })
      slowDialRecords(me!, peer!.peerId, 1000)
      const dialer = await realDialer(me!, [peerInfoOf(peer!)], { dialTimeout: 300 })
      await waitFor(() => dialer.stats.abandoned === 1, 'the timed-out dial', 5000)
      assert.equal(dialer.outbound, 1)
      assert.equal(dialer.stats.failed, 0)
      assert.deepEqual(dialer.dialedConnections().map(c => c.id), me!.getConnections(peer!.peerId).map(c => c.id))
    })

    it('adopts a real outbound connection and not an inbound one', async () => {
      const [me, a, b] = await nodes.createMany<{ capture: ComponentsCapture }>(3, { services: { capture: captureComponents() } })
      const dialer = await realDialer(me!, [])
      const outbound = await connect(me!, a!)
      await connect(b!, me!)
      await waitFor(() => me!.getConnections(b!.peerId).length === 1, 'the inbound connection', 5000)
      assert.equal(dialer.adopt(outbound), true)
      assert.equal(dialer.adopt(me!.getConnections(b!.peerId)[0]!), false)
      assert.equal(dialer.outbound, 1)
    })
  })
})
