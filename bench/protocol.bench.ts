import '../src/polyfill.js'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { toPbPeer } from '../src/protocol/convert.js'
import { Message } from '../src/protocol/pb/message.js'
import { seededRandom } from '../src/table/random.js'
import { protocolService } from '../test/protocol/utils.js'
import { TestNodes, peerInfoOf } from '../test/utils/libp2p.js'
import { fakePeerId } from '../test/utils/peers.js'
import { isMain, printTable } from './utils.js'
import type { ProtocolService } from '../test/protocol/utils.js'
import type { TestNode } from '../test/utils/libp2p.js'
import type { Connection } from '@libp2p/interface'

const ECHO = '/kad-discovery-bench/echo/1.0.0'
// PROTOCOL_BENCH_ROUND_MS shortens a run to check that the benchmark works (e.g. 20)
const ROUND_MS = Number(process.env.PROTOCOL_BENCH_ROUND_MS ?? 500)
const ROUNDS = ROUND_MS < 500 ? 1 : 5
const WARM_UP_MS = Math.min(300, ROUND_MS)

interface Services extends Record<string, unknown> { discovery: ProtocolService }

interface Case {
  name: string
  /** The echo case this one is compared with; itself for a floor. */
  floor: string
  concurrency: number
  roundTrip(): Promise<unknown>
}

/** One sample of a case: round trips per second, and CPU µs (both nodes) per round trip. */
interface Sample {
  perSecond: number
  cpuMicros: number
}

/**
 * Runs `c` for `ms`, `concurrency` at a time. The CPU time per round trip is this process's
 * (both nodes live in it): unlike the rate, other processes on the machine barely move it.
 */
async function sample (c: Case, ms: number): Promise<Sample> {
  let done = 0
  const cpu = process.cpuUsage()
  const start = performance.now()
  const until = start + ms
  await Promise.all(Array.from({ length: c.concurrency }, async () => {
    while (performance.now() < until) {
      await c.roundTrip()
      done++
    }
  }))
  const used = process.cpuUsage(cpu)
  return { perSecond: done / ((performance.now() - start) / 1000), cpuMicros: (used.user + used.system) / done }
}

/**
 * Every case in turn, `ROUNDS` times, and each case's median: the machine's load drifts,
 * and interleaving keeps a case and its floor under the same drift.
 */
async function measureAll (cases: Case[]): Promise<Map<string, Sample>> {
  for (const c of cases) {
    await sample(c, WARM_UP_MS)
  }
  const samples = new Map<string, Sample[]>(cases.map(c => [c.name, []]))
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of cases) {
      samples.get(c.name)?.push(await sample(c, ROUND_MS))
    }
  }
  return new Map([...samples].map(([name, list]) => [name, {
    perSecond: median(list.map(s => s.perSecond)),
    cpuMicros: median(list.map(s => s.cpuMicros))
  }]))
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

/**
 * The floor: what any one-request-per-stream protocol pays. A new stream per round trip on
 * the open connection, negotiated optimistically as our client does, one length-prefixed
 * frame out and the same frame back, closed without waiting; no protobuf, no checks, no
 * timers, no bookkeeping.
 */
async function echoRoundTrip (connection: Connection, payload: Uint8Array): Promise<void> {
  const stream = await connection.newStream(ECHO, { negotiateFully: false })
  const lp = lpStream(stream)
  await lp.write(payload)
  await lp.read()
  stream.close().catch(err => { stream.abort(err) })
}

/** Runs the protocol benchmark and prints round trips per second against the echo floor. */
export async function run (): Promise<void> {
  const nodes = new TestNodes()
  try {
    const [a, b, signed] = await nodes.createMany<Services>(3, { services: { discovery: protocolService({ server: { rateLimit: { perPeer: { burst: 1e9, perSecond: 1e9 }, global: { burst: 1e9, perSecond: 1e9 } } } }) } }) as [TestNode<Services>, TestNode<Services>, TestNode<Services>]
    // `signed` answers with a signed peer record (Ed25519, one address) for every node, as
    // a node does for peers it ran identify with; the client verifies each one
    for (let i = 0; i < 32; i++) {
      const key = await generateKeyPair('Ed25519')
      const id = peerIdFromPrivateKey(key)
      const addrs = [multiaddr(`/ip4/52.1.${i}.1/tcp/4001`)]
      const envelope = await RecordEnvelope.seal(new PeerRecord({ peerId: id, multiaddrs: addrs }), key)
      await signed.peerStore.consumePeerRecord(envelope.marshal(), { expectedPeer: id })
      signed.services.discovery.table.addFoundNode({ id, multiaddrs: addrs })
    }
    await a.dial(signed.getMultiaddrs())
    await b.handle(ECHO, async (stream) => {
      const lp = lpStream(stream)
      await lp.write(await lp.read())
      await stream.close()
    }, { maxInboundStreams: 64 })
    const random = seededRandom(7)
    for (let i = 0; i < 400; i++) {
      b.services.discovery.table.addFoundNode({ id: fakePeerId(random), multiaddrs: [multiaddr(`/ip4/51.${15 + (i >> 8)}.${i & 0xff}.1/tcp/4001`)] })
    }
    // one connection, opened up front and reused by every round trip, as in a lookup
    const connection = await a.dial(b.getMultiaddrs())
    const client = a.services.discovery.client
    const target = new Uint8Array(32).fill(1)
    const answer = await client.findNode(peerInfoOf(b), target)
    const nodesAnswer = answer.length
    const nodesBytes = Message.encode({ type: Message.Type.NODES, peers: answer.map(p => toPbPeer(p.id, p.multiaddrs)) }).byteLength
    const small = new Uint8Array(2)
    // the NODES floor echoes as many bytes as the NODES answer has
    const large = new Uint8Array(nodesBytes)
    const signedAnswer = await client.findNode(peerInfoOf(signed), target)
    if (signedAnswer.some(p => p.recordSeq == null)) {
      throw new Error('the records case answered without verified records')
    }

    const cases: Case[] = []
    for (const concurrency of [1, 8]) {
      const suffix = concurrency === 1 ? '' : `, ${concurrency} in flight`
      const echoSmall = `echo 2 B (floor)${suffix}`
      const echoLarge = `echo ${nodesBytes} B (floor)${suffix}`
      cases.push(
        { name: echoSmall, floor: echoSmall, concurrency, roundTrip: async () => echoRoundTrip(connection, small) },
        { name: `PING → PONG${suffix}`, floor: echoSmall, concurrency, roundTrip: async () => client.ping(b.peerId) },
        { name: echoLarge, floor: echoLarge, concurrency, roundTrip: async () => echoRoundTrip(connection, large) },
        { name: `FIND_NODE → NODES (${nodesAnswer} peers)${suffix}`, floor: echoLarge, concurrency, roundTrip: async () => client.findNode(b.peerId, target) },
        { name: `FIND_NODE → NODES (16 peers, 16 signed records, verified)${suffix}`, floor: echoLarge, concurrency, roundTrip: async () => client.findNode(signed.peerId, target) }
      )
    }
    const results = await measureAll(cases)
    const header = ['round trip (memory transport, 2 nodes)', 'per second', 'floor ÷ this', 'CPU µs each', 'CPU ÷ floor CPU']
    printTable(header, cases.map(c => {
      const result = results.get(c.name) ?? { perSecond: Number.NaN, cpuMicros: Number.NaN }
      const floor = results.get(c.floor) ?? { perSecond: Number.NaN, cpuMicros: Number.NaN }
      return [c.name, Math.round(result.perSecond), (floor.perSecond / result.perSecond).toFixed(2), Math.round(result.cpuMicros), (result.cpuMicros / floor.cpuMicros).toFixed(2)]
    }))
    console.log(`\nmedians of ${ROUNDS} interleaved rounds of ${ROUND_MS} ms, one reused connection; CPU covers both nodes`)
  } finally {
    await nodes.stop()
  }
}

if (isMain(import.meta.url)) {
  await run()
}
