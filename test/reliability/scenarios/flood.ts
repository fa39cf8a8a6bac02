import { multiaddr } from '@multiformats/multiaddr'
import { REQUEST_TIMEOUT } from '../../../src/constants.js'
import { Message } from '../../../src/protocol/pb/message.js'
import { DEFAULT_PER_PEER } from '../../../src/protocol/rate-limiter.js'
import { NodeGroup, sleep } from '../utils/nodes.js'
import { Claims, quiet } from '../utils/scenario.js'
import { aftermath, aftermathClaims, heapBaseline, startChildVictim } from '../utils/victim.js'
import { mib, ProcessWatch } from '../utils/watch.js'
import { connectionTo, sendRequest } from '../utils/wire.js'
import type { ChildNode } from '../utils/child.js'
import type { Scenario } from '../utils/scenario.js'
import type { Aftermath } from '../utils/victim.js'
import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** How big the flood. */
export interface FloodSize {
  /** Requests in the burst, from all flooders together. */
  requests: number
  /** Flooding peers, each its own key and loopback address. */
  flooders: number
  /** Requests each flooder has in flight at once. */
  concurrency: number
  /** Honest peers probing the victim all through the flood. */
  probers: number
}

/** What the flood came to. */
export interface FloodFigures extends Aftermath {
  requests: number
  flooders: number
  floodMs: number
  floodAnswered: number
  floodRefused: number
  maxAnsweredPerFlooder: number
  allowedPerFlooder: number
  rateLimitedPeer: number
  rateLimitedGlobal: number
  probes: number
  probesAnswered: number
  probeTimeoutMs: number
  probeMaxMs: number
  heapPeakGrowthMiB: number
  oldSpaceLimitMiB: number
  rejections: number
}

/**
 * The victim's old-space limit, MiB: some three times its baseline heap. `heapUsed` peaks
 * high with garbage V8 has not yet collected; under this limit V8 must collect it, and a
 * heap the flood made grow without bound would end the process out of memory.
 */
export const OLD_SPACE_LIMIT_MIB = 48
/** Requests of the warm-up, one at a time per flooder. */
const WARMUP = 100

/**
 * A flood. A victim in its own process, with its default rate limits, takes `requests`
 * valid requests (FIND_NODE and PING) in one burst from `flooders` peers, each at its own
 * loopback address with `concurrency` requests in flight. Meanwhile honest peers probe it
 * with one request every 100 ms. No flooder may get more answers than its token bucket
 * allows, every probe must be answered within the request timeout, the heap stays bounded
 * (the victim runs, and must survive, under an old-space limit of `OLD_SPACE_LIMIT_MIB`;
 * its peak is reported), and afterwards nothing is left behind.
 */
export async function runFlood (size: FloodSize, log: (line: string) => void = quiet): Promise<FloodFigures> {
  const group = new NodeGroup()
  const watch = new ProcessWatch()
  let victim: ChildNode | undefined
  const probing = new AbortController()
  // BOUNDED: `probers` loops
  const probes: Array<Promise<void>> = []
  try {
    const started = await startChildVictim(group, 3, { maxOldSpaceMiB: OLD_SPACE_LIMIT_MIB })
    victim = started.victim
    const victimAddr = multiaddr(victim.addrs[0]!)
    const flooders = await group.createMany(size.flooders, i => ({ ip: `127.0.3.${i + 1}` }))
    const probers = await group.createMany(size.probers, i => ({ ip: `127.0.4.${i + 1}` }))
    // a warm-up: code compiled and caches filled for the first time are not growth
    await burst(flooders, victimAddr, WARMUP, 1)
    await sleep(1000)
    const before = await victim.stats()
    const baseline = await heapBaseline(victim)
    log(`victim up and warmed; heap ${mib(baseline)} MiB`)

    // the honest probes, all through the flood
    // the module's own request timeout: what an honest requester would wait
    const timeout = REQUEST_TIMEOUT
    let probeCount = 0
    let probesAnswered = 0
    let probeMaxMs = 0
    for (const prober of probers) {
      probes.push((async () => {
        for (let n = 0; !probing.signal.aborted; n++) {
          const t0 = Date.now()
          probeCount++
          try {
            const connection = await prober.dial(victimAddr, { signal: AbortSignal.timeout(timeout) })
            await sendRequest(connection, n % 2 === 0 ? findNode() : { type: Message.Type.PING, peers: [] }, timeout - (Date.now() - t0))
            probesAnswered++
          } catch {}
          probeMaxMs = Math.max(probeMaxMs, Date.now() - t0)
          await sleep(100)
        }
      })())
    }

    // the burst; the flooders' budgets were spent by the warm-up
    const t0 = Date.now()
    const cpu0 = process.cpuUsage()
    const { answered, refused } = await burst(flooders, victimAddr, size.requests, size.concurrency)
    const floodMs = Date.now() - t0
    const victimCpuMs = (await victim.stats()).cpuMs - before.cpuMs
    log(`${size.requests} requests in ${floodMs} ms: ${answered.reduce((a, b) => a + b, 0)} answered; victim CPU ${victimCpuMs} ms, here ${Math.round((process.cpuUsage().user - cpu0.user) / 1000)} ms`)
    // a few more probes after the burst, while the victim still works through it
    await sleep(500)
    probing.abort()
    await Promise.all(probes)

    const { stats: after, figures: left } = await aftermath(victim, baseline)
    const delta = (key: string): number => (after.server[key] ?? 0) - (before.server[key] ?? 0)
    return {
      requests: answered.length * Math.ceil(size.requests / answered.length),
      flooders: size.flooders,
      floodMs,
      floodAnswered: answered.reduce((a, b) => a + b, 0),
      floodRefused: refused,
      maxAnsweredPerFlooder: Math.max(...answered),
      // a full bucket, what it refills during the flood, and one second of slack for clocks
      allowedPerFlooder: Math.ceil(DEFAULT_PER_PEER.burst + DEFAULT_PER_PEER.perSecond * (floodMs / 1000 + 1)),
      rateLimitedPeer: delta('rateLimited.peer'),
      rateLimitedGlobal: delta('rateLimited.global'),
      probes: probeCount,
      probesAnswered,
      probeTimeoutMs: timeout,
      probeMaxMs,
      heapPeakGrowthMiB: mib(after.heapPeak - baseline),
      oldSpaceLimitMiB: OLD_SPACE_LIMIT_MIB,
      ...left,
      rejections: watch.rejections.length
    }
  } finally {
    probing.abort()
    await Promise.allSettled(probes)
    await victim?.stop()
    watch.stop()
    await group.stop()
  }
}

/** Valid requests from each flooder, `requests` in all, `concurrency` in flight per flooder. */
async function burst (flooders: Libp2p[], victimAddr: Multiaddr, requests: number, concurrency: number): Promise<{ answered: number[], refused: number }> {
  const perFlooder = Math.ceil(requests / flooders.length)
  const answered: number[] = flooders.map(() => 0)
  let refused = 0
  await Promise.all(flooders.map(async (flooder, f) => {
    let sent = 0
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (sent < perFlooder) {
        sent++
        try {
          const connection = await connectionTo(flooder, victimAddr)
          await sendRequest(connection, sent % 2 === 0 ? findNode() : { type: Message.Type.PING, peers: [] }, 10_000)
          answered[f]!++
        } catch {
          refused++
        }
      }
    }))
  }))
  return { answered, refused }
}

function findNode (): Message {
  return { type: Message.Type.FIND_NODE, target: crypto.getRandomValues(new Uint8Array(32)), peers: [] }
}

/** The claims of the flood scenario. */
export function checkFlood (f: FloodFigures): string[] {
  const claims = new Claims()
    .claim('rate-limit', f.maxAnsweredPerFlooder <= f.allowedPerFlooder, `a flooder got ${f.maxAnsweredPerFlooder} answers > its budget of ${f.allowedPerFlooder}`)
    .claim('flood-happened', f.rateLimitedPeer > 0, 'the per-peer limit never refused anything: no flood happened')
    .claim('all-ended', f.floodAnswered + f.floodRefused === f.requests, `only ${f.floodAnswered + f.floodRefused} of ${f.requests} requests ended`)
    .claim('honest-answered', f.probesAnswered === f.probes, `${f.probes - f.probesAnswered} of ${f.probes} honest probes not answered within ${f.probeTimeoutMs} ms`)
    .claim('rejections', f.rejections === 0, `${f.rejections} unhandled rejections here`)
  return aftermathClaims(claims, f).failed
}

/** A burst of requests from several peers. */
export const flood: Scenario<FloodSize, FloodFigures> = {
  name: 'flood',
  title: 'a burst of requests from several peers',
  fast: { requests: 2000, flooders: 4, concurrency: 12, probers: 2 },
  full: { requests: 10_000, flooders: 8, concurrency: 12, probers: 3 },
  run: runFlood,
  check: checkFlood
}
