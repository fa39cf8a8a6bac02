/**
 * A discovery node in a process of its own, driven over IPC by `ChildNode` (child.ts).
 * The fuzz, flood and slow-peer scenarios measure the victim's heap without the attackers'
 * objects in it, and see a crash as a process exit; the crash scenario SIGKILLs it while it
 * writes its node database. Run by `fork` with `--expose-gc`; its one argument is a JSON
 * `ChildConfig`.
 */
import '../../../src/polyfill.js'
import { writeHeapSnapshot } from 'node:v8'
import { privateKeyFromProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { LevelDatastore } from 'datastore-level'
import { REQUEST_TIMEOUT } from '../../../src/constants.js'
import { kadDiscovery, PROTOCOL } from '../../../src/index.js'
import { RateLimiter } from '../../../src/protocol/rate-limiter.js'
import { encodeFields, nodeKey } from '../../../src/store/records.js'
import { cryptoRandom, seededRandom } from '../../../src/table/random.js'
import { fakePeerId, tcpAddr } from '../../utils/peers.js'
import { scenarioNode } from './nodes.js'
import { tableContents, tableViolations } from './table.js'
import { collectGarbage, settledHeap } from './watch.js'
import type { ChildConfig, ChildReply, ChildRequest, ChildStats } from './child.js'
import type { KadDiscovery, KadDiscoveryInit } from '../../../src/index.js'
import type { ProtocolClient } from '../../../src/protocol/client.js'
import type { ProtocolServer } from '../../../src/protocol/server.js'
import type { NodeDB } from '../../../src/store/node-db.js'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig
let rejections = 0
let exceptions = 0
process.on('unhandledRejection', (reason) => {
  rejections++
  process.stderr.write(`unhandled rejection: ${String(reason)}\n`)
})
process.on('uncaughtException', (err) => {
  exceptions++
  process.stderr.write(`uncaught exception: ${String(err?.stack ?? err)}\n`)
})

let peak = process.memoryUsage().heapUsed
setInterval(() => { peak = Math.max(peak, process.memoryUsage().heapUsed) }, 10).unref()

interface Internals {
  server: ProtocolServer
  client: ProtocolClient
  db: NodeDB
}

async function main (): Promise<void> {
  const datastore = config.datastorePath == null ? undefined : new LevelDatastore(config.datastorePath)
  await datastore?.open()
  const init: KadDiscoveryInit = { ...config.init, ...(datastore != null ? { datastore } : {}) }
  const node = await scenarioNode<{ discovery: KadDiscovery }>({
    ip: config.ip,
    ...(config.privateKey != null ? { privateKey: privateKeyFromProtobuf(Buffer.from(config.privateKey, 'hex')) } : {}),
    services: { discovery: kadDiscovery(init) }
  })
  const discovery = node.services.discovery
  const internals = discovery as unknown as Internals
  if (config.liftRateLimit === true) {
    // the fuzz run wants every frame to reach the decoder; the flood scenario tests the limiter
    (internals.server as unknown as { limiter: RateLimiter }).limiter = new RateLimiter({ perPeer: { burst: 1e9, perSecond: 1e9 }, global: { burst: 1e9, perSecond: 1e9 } })
  }
  let writes = 0
  if (datastore != null && config.writeLoop != null) {
    writeLoop(datastore, config.writeLoop, () => { writes++ }).catch(err => {
      process.stderr.write(`write loop stopped: ${String(err)}\n`)
    })
  }

  process.on('message', (message: ChildRequest) => {
    handle(message, node, discovery, internals, init, () => writes).then(
      result => { process.send?.({ id: message.id, ok: true, result } satisfies ChildReply) },
      err => { process.send?.({ id: message.id, ok: false, error: String(err?.stack ?? err) } satisfies ChildReply) }
    )
  })
  process.send?.({ event: 'ready', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(ma => ma.toString()) })
}

/**
 * Keeps the node database busy so a SIGKILL lands mid-write: batches of records for a fixed
 * pool of made-up nodes (so the store stays bounded), every `tornEvery`-th one cut short, as
 * a writer torn mid-record would leave it. Their pongs are older than any seed may be, so
 * they never stand in for the real seeds.
 */
async function writeLoop (datastore: LevelDatastore, loop: NonNullable<ChildConfig['writeLoop']>, onBatch: () => void): Promise<void> {
  const random = cryptoRandom()
  // the same made-up nodes in every run, so the store stays bounded across restarts
  const seeded = seededRandom(3)
  const pool = Array.from({ length: loop.pool }, () => fakePeerId(seeded).toString())
  let n = 0
  for (;;) {
    const batch = datastore.batch()
    const now = Date.now()
    for (let i = 0; i < loop.batch; i++, n++) {
      const value = encodeFields({ addrs: [tcpAddr(`127.9.${n % 250}.1`).bytes], lastPingSent: 0, lastPongReceived: now - 6 * 86_400_000, findFails: 0, firstSeen: now })
      batch.put(nodeKey(pool[n % pool.length] as string), n % loop.tornEvery === 0 ? value.subarray(0, random.int(value.length)) : value)
    }
    await batch.commit()
    onBatch()
  }
}

async function handle (message: ChildRequest, node: Libp2p, discovery: KadDiscovery, internals: Internals, init: KadDiscoveryInit, writes: () => number): Promise<unknown> {
  switch (message.cmd) {
    case 'stats':
      return stats(node, discovery, internals, init, writes())
    case 'gc':
      return settledHeap()
    case 'heapSnapshot':
      // for diagnosing a heap that does not settle: `arg` is where the snapshot goes
      collectGarbage()
      return writeHeapSnapshot(message.arg)
    case 'resetPeak':
      peak = process.memoryUsage().heapUsed
      return peak
    case 'lookup': {
      const started = Date.now()
      const target = message.arg == null ? cryptoRandom().bytes(32) : peerIdFromString(message.arg)
      const found = await discovery.lookup(target)
      return { ms: Date.now() - started, found: found.map(p => p.id.toString()) }
    }
    case 'stop':
      await node.stop()
      setTimeout(() => process.exit(0), 10)
      return true
  }
}

/** The discovery protocol's streams over `connections`, each with its connection. */
function discoveryStreams (connections: Connection[], init: KadDiscoveryInit): Array<{ stream: Stream, connection: Connection }> {
  return connections.flatMap(connection => connection.streams
    .filter(s => s.protocol === (init.protocol ?? PROTOCOL))
    .map(stream => ({ stream, connection })))
}

/**
 * The discovery streams older than twice the request timeout: past every deadline of the
 * client and the server, so held by nothing that is still running. Younger ones may
 * belong to a request that has just begun (revalidation, an introduction).
 */
function lingering (connections: Connection[], init: KadDiscoveryInit): Array<{ stream: Stream, connection: Connection }> {
  const limit = 2 * (init.requestTimeout ?? REQUEST_TIMEOUT)
  return discoveryStreams(connections, init).filter(({ stream }) => Date.now() - stream.timeline.open > limit)
}

function stats (node: Libp2p, discovery: KadDiscovery, internals: Internals, init: KadDiscoveryInit, writes: number): ChildStats {
  const connections = node.getConnections()
  return {
    heapUsed: process.memoryUsage().heapUsed,
    heapPeak: peak,
    rss: process.memoryUsage().rss,
    cpuMs: Math.round((process.cpuUsage().user + process.cpuUsage().system) / 1000),
    table: [...tableContents(discovery)],
    liveEntries: discovery.buckets().reduce((n, b) => n + b.entries.filter(e => e.livenessChecks > 0).length, 0),
    tableProblems: tableViolations(discovery, node.peerId, init),
    server: { ...internals.server.stats },
    serving: internals.server.serving,
    client: { ...internals.client.stats },
    requestConnections: internals.client.requestConnections,
    connections: connections.length,
    closeListeners: Math.max(0, ...connections.map(c => (c as unknown as { listenerCount(type: string): number }).listenerCount('close'))),
    streams: discoveryStreams(connections, init).length,
    lingeringStreams: lingering(connections, init).length,
    streamStates: lingering(connections, init).slice(0, 4).map(({ stream, connection }) =>
      `${stream.direction} ${stream.status} read ${stream.readStatus} write ${stream.writeStatus} on a ${connection.direction} ${connection.status} connection, ${Date.now() - stream.timeline.open} ms old`).join('; '),
    db: { ...internals.db.stats },
    rejections,
    exceptions,
    writes
  }
}

main().catch(err => {
  process.stderr.write(`child failed to start: ${String(err?.stack ?? err)}\n`)
  process.exit(1)
})
