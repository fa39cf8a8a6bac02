import { multiaddr } from '@multiformats/multiaddr'
import { PROTOCOL } from '../../../src/constants.js'
import { Message } from '../../../src/protocol/pb/message.js'
import { frame } from '../../protocol/utils.js'
import { NodeGroup, sleep } from '../utils/nodes.js'
import { Claims, quiet } from '../utils/scenario.js'
import { aftermath, aftermathClaims, heapBaseline, startChildVictim } from '../utils/victim.js'
import { mib, ProcessWatch } from '../utils/watch.js'
import { connectionTo, sendRequest, serveByHand } from '../utils/wire.js'
import type { ChildNode } from '../utils/child.js'
import type { Scenario } from '../utils/scenario.js'
import type { Aftermath } from '../utils/victim.js'
import type { Stream } from '@libp2p/interface'

/** How many slow peers, for how long. */
export interface SlowSize {
  /** Slow peers: half never write, half write one byte a second. */
  peers: number
  /** Streams each slow peer holds open to the victim at once (under its 16 per connection). */
  streamsPerPeer: number
  /** How long the slow peers keep at it, ms. */
  durationMs: number
  /** Lookups the victim runs meanwhile (its requests reach the slow peers). */
  lookups: number
}

/** What the slow peers came to. */
export interface SlowFigures extends Aftermath {
  peers: number
  requestTimeoutMs: number
  inboundStreamsOpened: number
  inboundStreamsClosedByVictim: number
  inboundStreamsLeftOpen: number
  maxInboundStreamMs: number
  victimRequestTimeouts: number
  victimPingsSent: number
  lookups: number
  lookupsCompleted: number
  lookupMaxMs: number
  maxServing: number
  maxStreams: number
  streamBound: number
  maxConnections: number
  /** The most `close` listeners one of the victim's connections held at once. */
  maxCloseListeners: number
  rejections: number
}

const REQUEST_TIMEOUT = 1000
/** `close` listeners one connection may hold: libp2p's own few and one per request in flight on it. */
const LISTENER_BOUND = 8

/**
 * Slow peers. A victim in its own process (request timeout 1 s) meets peers that prove
 * themselves with a valid PING, so its table holds them and its revalidation and lookups
 * ask them, and then answer nothing (half of them) or one byte a second (the other half);
 * meanwhile each holds `streamsPerPeer` streams open to the victim that send nothing or one
 * byte a second. The victim's requests to them must time out, every stream they open must
 * be closed by the victim, and streams, requests in flight and the heap must stay bounded
 * and come back down when they leave.
 */
export async function runSlow (size: SlowSize, log: (line: string) => void = quiet): Promise<SlowFigures> {
  const group = new NodeGroup()
  const watch = new ProcessWatch()
  let victim: ChildNode | undefined
  const leaving = new AbortController()
  // BOUNDED: peers × streamsPerPeer holders plus one proving loop per peer
  const loops: Array<Promise<void>> = []
  try {
    const started = await startChildVictim(group, 3, { init: { requestTimeout: REQUEST_TIMEOUT, revalidateInterval: 200 } })
    victim = started.victim
    const victimAddr = multiaddr(victim.addrs[0]!)
    const slow = await group.createMany(size.peers, i => ({ ip: `127.0.5.${i + 1}` }))
    const trickles = (i: number): boolean => i % 2 === 1
    // as answerers: silence, or a PONG / NODES one byte a second
    for (const [i, peer] of slow.entries()) {
      await serveByHand(peer, () => undefined, async (stream) => {
        if (trickles(i)) {
          await trickle(stream, frame(Message.encode({ type: Message.Type.NODES, peers: [] })))
        } else {
          await ended(stream, 60_000)
        }
      })
    }
    const before = await victim.stats()
    const baseline = await heapBaseline(victim)
    log(`victim up; heap ${mib(baseline)} MiB`)

    // each slow peer proves itself now and then, so it stays in (or comes back to) the table
    for (const peer of slow) {
      loops.push((async () => {
        while (!leaving.signal.aborted) {
          try {
            await sendRequest(await connectionTo(peer, victimAddr), { type: Message.Type.PING, peers: [] }, 5000)
          } catch {}
          await sleep(1000)
        }
      })())
    }
    // and holds streams open to the victim that say nothing or one byte a second
    let opened = 0
    let closedByVictim = 0
    let leftOpen = 0
    let maxInboundStreamMs = 0
    const request = frame(Message.encode({ type: Message.Type.FIND_NODE, target: new Uint8Array(32), peers: [] }))
    for (const [i, peer] of slow.entries()) {
      for (let s = 0; s < size.streamsPerPeer; s++) {
        loops.push((async () => {
          while (!leaving.signal.aborted) {
            let stream: Stream
            try {
              stream = await (await connectionTo(peer, victimAddr)).newStream(PROTOCOL, { signal: AbortSignal.timeout(5000), negotiateFully: false })
            } catch {
              await sleep(200)
              continue
            }
            opened++
            const t0 = Date.now()
            const holding = trickles(i) ? trickle(stream, request) : Promise.resolve()
            // the victim must end it; we wait at most five request timeouts
            if (await ended(stream, 5 * REQUEST_TIMEOUT)) {
              closedByVictim++
              maxInboundStreamMs = Math.max(maxInboundStreamMs, Date.now() - t0)
            } else {
              leftOpen++
              stream.abort(new Error('the victim never closed it'))
            }
            await holding
          }
        })())
      }
    }

    // the victim asks around meanwhile, slow peers included; its resources are sampled
    let maxServing = 0
    let maxStreams = 0
    let maxConnections = 0
    let maxCloseListeners = 0
    const sampler = setInterval(() => {
      victim?.stats().then(s => {
        maxServing = Math.max(maxServing, s.serving)
        maxStreams = Math.max(maxStreams, s.streams)
        maxConnections = Math.max(maxConnections, s.connections)
        maxCloseListeners = Math.max(maxCloseListeners, s.closeListeners)
      }, () => {})
    }, 250)
    const end = Date.now() + size.durationMs
    let lookupsCompleted = 0
    let lookupMaxMs = 0
    const slowIds = new Set(slow.map(p => p.peerId.toString()))
    for (let l = 0; l < size.lookups; l++) {
      // aim at a slow peer the table holds, when there is one, so it is surely asked
      const inTable = (await victim.stats()).table.map(([id]) => id).filter(id => slowIds.has(id))
      const target = inTable[l % Math.max(1, inTable.length)]
      try {
        const result = await victim.call<{ ms: number }>('lookup', target, 30_000)
        lookupsCompleted++
        lookupMaxMs = Math.max(lookupMaxMs, result.ms)
      } catch {}
      await sleep(Math.max(0, (end - Date.now()) / (size.lookups - l)))
    }
    while (Date.now() < end) {
      await sleep(100)
    }
    log(`slow peers leave: ${opened} streams opened, ${closedByVictim} closed by the victim`)
    leaving.abort()
    await Promise.all(loops)
    clearInterval(sampler)
    await Promise.all(slow.map(async p => { await group.stopOne(p) }))

    const { stats: after, figures: left } = await aftermath(victim, baseline)
    const delta = (key: string): number => (after.client[key] ?? 0) - (before.client[key] ?? 0)
    return {
      peers: size.peers,
      requestTimeoutMs: REQUEST_TIMEOUT,
      inboundStreamsOpened: opened,
      inboundStreamsClosedByVictim: closedByVictim,
      inboundStreamsLeftOpen: leftOpen,
      maxInboundStreamMs,
      victimRequestTimeouts: delta('timeout'),
      victimPingsSent: delta('sent.PING'),
      lookups: size.lookups,
      lookupsCompleted,
      lookupMaxMs,
      maxServing,
      maxStreams,
      // every slow peer's streams, both ways, and as much again for the honest peers
      streamBound: 2 * (size.peers + started.peers.length) * 16,
      maxConnections,
      maxCloseListeners,
      ...left,
      rejections: watch.rejections.length
    }
  } finally {
    leaving.abort()
    await Promise.allSettled(loops)
    await victim?.stop()
    watch.stop()
    await group.stop()
  }
}

/** Writes `bytes` one a second until done or the stream ends. */
async function trickle (stream: Stream, bytes: Uint8Array): Promise<void> {
  for (const byte of bytes) {
    if (stream.status !== 'open' || stream.writeStatus !== 'writable') {
      return
    }
    stream.send(Uint8Array.of(byte))
    await sleep(1000)
  }
}

/** Whether `stream` ended (closed, reset or aborted) within `ms`. */
async function ended (stream: Stream, ms: number): Promise<boolean> {
  if (stream.status !== 'open') {
    return true
  }
  return new Promise<boolean>(resolve => {
    const timer = setTimeout(() => { resolve(false) }, ms)
    stream.addEventListener('close', () => {
      clearTimeout(timer)
      resolve(true)
    }, { once: true })
  })
}

/** The claims of the slow-peers scenario. */
export function checkSlow (f: SlowFigures): string[] {
  const claims = new Claims()
    .claim('requests-timed-out', f.victimRequestTimeouts > 0, 'no request of the victim to a slow peer timed out: none was asked')
    .claim('streams-closed', f.inboundStreamsOpened > 0 && f.inboundStreamsLeftOpen === 0, `${f.inboundStreamsLeftOpen} of ${f.inboundStreamsOpened} slow streams were not closed by the victim`)
    .claim('lookups-completed', f.lookupsCompleted === f.lookups, `${f.lookups - f.lookupsCompleted} lookups did not complete`)
    .claim('streams-bounded', f.maxStreams <= f.streamBound, `${f.maxStreams} streams open at once > ${f.streamBound}`)
    .claim('listeners-bounded', f.maxCloseListeners <= LISTENER_BOUND, `a connection held ${f.maxCloseListeners} close listeners > ${LISTENER_BOUND}`)
    .claim('rejections', f.rejections === 0, `${f.rejections} unhandled rejections here`)
  return aftermathClaims(claims, f).failed
}

/** Peers that accept a stream and never write, or write one byte a second. */
export const slow: Scenario<SlowSize, SlowFigures> = {
  name: 'slow',
  title: 'slow peers: silent, or one byte a second',
  fast: { peers: 4, streamsPerPeer: 4, durationMs: 8000, lookups: 3 },
  full: { peers: 10, streamsPerPeer: 8, durationMs: 60_000, lookups: 20 },
  run: runSlow,
  check: checkSlow
}
