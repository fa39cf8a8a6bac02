import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { LevelDatastore } from 'datastore-level'
import { kadDiscovery } from '../../../src/index.js'
import { decodeFields, NODES_PREFIX } from '../../../src/store/records.js'
import { FAST } from '../../utils/network.js'
import { ChildNode } from '../utils/child.js'
import { honestIP, NodeGroup, sleep } from '../utils/nodes.js'
import { Claims, quiet } from '../utils/scenario.js'
import { ProcessWatch, until } from '../utils/watch.js'
import type { KadDiscovery, KadDiscoveryInit } from '../../../src/index.js'
import type { NodeDB } from '../../../src/store/node-db.js'
import type { ChildConfig } from '../utils/child.js'
import type { Scenario } from '../utils/scenario.js'

/** How many crashes. */
export interface CrashSize {
  /** Seed nodes: the network the crashing node joins and must rejoin. */
  seeds: number
  /** SIGKILLs, each followed by a restart over the same LevelDB folder. */
  kills: number
  /** Records per batch of the write loop. */
  batch: number
}

/** What the crashes came to. */
export interface CrashFigures extends Record<string, number | string | boolean> {
  kills: number
  batchesBeforeKills: number
  /** Restarts in a child process after a kill (the last restart is in-process: `final…`). */
  restartsStarted: number
  restartsRejoined: number
  meanRejoinMs: number
  recordsOnDisk: number
  tornRecordsOnDisk: number
  finalStarted: boolean
  finalRejoinedSeeds: number
  corruptCounted: number
  corruptLeft: number
  firstFailure: string
  rejections: number
}

const NODE_IP = '127.6.0.1'
const POOL = 2000
const TORN_EVERY = 10

/**
 * Crash and restart. A node in a child process joins a network of seed nodes, keeps its
 * LevelDB node database busy (the service copies live nodes every 20 ms, and a write loop
 * commits batches of records without pause, every tenth record cut short as a torn write
 * would leave it) and is SIGKILLed at a random moment. It restarts over the same folder
 * with no bootnode at all, so it must rejoin from the seeds it stored; `kills` times. Then
 * a last restart in this process checks that the store opens, that the corrupt records
 * are counted and deleted, and that the node rejoins.
 */
export async function runCrash (size: CrashSize, log: (line: string) => void = quiet): Promise<CrashFigures> {
  const group = new NodeGroup()
  const watch = new ProcessWatch()
  const folder = await mkdtemp(join(tmpdir(), 'kad-discovery-crash-'))
  // BOUNDED: one child at a time
  let child: ChildNode | undefined
  let level: LevelDatastore | undefined
  let firstFailure = ''
  const fail = (what: string): void => { firstFailure = firstFailure === '' ? what : firstFailure }
  try {
    const common: KadDiscoveryInit = { ...FAST, revalidateInterval: 1000, autoDial: { enabled: false } }
    const seeds = [await group.create<{ discovery: KadDiscovery }>({ ip: honestIP(0), services: { discovery: kadDiscovery(common) } })]
    const bootnode = seeds[0]!.getMultiaddrs()[0]!.toString()
    seeds.push(...await group.createMany(size.seeds - 1, i => ({ ip: honestIP(i + 1), services: { discovery: kadDiscovery({ ...common, bootnodes: [bootnode] }) } })))
    const seedIds = new Set(seeds.map(s => s.peerId.toString()))
    const privateKey = await generateKeyPair('Ed25519')
    const want = Math.min(size.seeds, 4)

    let batchesBeforeKills = 0
    let restartsStarted = 0
    let restartsRejoined = 0
    const rejoinMs: number[] = []
    for (let k = 0; k < size.kills; k++) {
      const config: ChildConfig = {
        ip: NODE_IP,
        privateKey: Buffer.from(privateKeyToProtobuf(privateKey)).toString('hex'),
        datastorePath: folder,
        // after the first crash, no bootnode: the node database is all it has
        init: { ...FAST, revalidateInterval: 100, copyNodesInterval: 20, seedMinTableTime: 0, autoDial: { enabled: false }, bootnodes: k === 0 ? [bootnode] : [] },
        writeLoop: { batch: size.batch, pool: POOL, tornEvery: TORN_EVERY }
      }
      const started = Date.now()
      try {
        child = await ChildNode.start(config)
      } catch (err: any) {
        fail(`start ${k}: ${String(err?.message ?? err)}`)
        continue
      }
      if (k > 0) {
        restartsStarted++
      }
      const joined = await until(async () => {
        const stats = await child!.stats()
        return stats.table.filter(([id]) => seedIds.has(id)).length >= want && stats.liveEntries > 0 && stats.writes > 0
      }, 30_000)
      if (joined && k > 0) {
        restartsRejoined++
        rejoinMs.push(Date.now() - started)
      } else if (!joined) {
        fail(`run ${k} did not ${k === 0 ? 'join' : 'rejoin from its seeds'}: ${child.lastErrors()}`)
      }
      // let live nodes reach the store, then kill it at a random moment of its writing
      await sleep(100 + Math.floor(Math.random() * 300))
      batchesBeforeKills += (await child.stats()).writes
      child.process.kill('SIGKILL')
      await child.exited
      child = undefined
      if (k % 5 === 4 || k === size.kills - 1) {
        log(`${k + 1} runs, ${restartsRejoined} restarts rejoined from their seeds`)
      }
    }

    // what the kills left on disk
    level = new LevelDatastore(folder)
    await level.open()
    let recordsOnDisk = 0
    let tornRecordsOnDisk = 0
    for await (const { value } of level.query({ prefix: NODES_PREFIX })) {
      recordsOnDisk++
      tornRecordsOnDisk += typeof decodeFields(value) === 'string' ? 1 : 0
    }

    // the last restart, in this process, with nothing but the folder
    let finalStarted = false
    let finalRejoinedSeeds = 0
    let corruptCounted = 0
    try {
      const node = await group.create<{ discovery: KadDiscovery }>({ ip: NODE_IP, privateKey, services: { discovery: kadDiscovery({ ...common, datastore: level }) } })
      finalStarted = true
      const known = (): number => node.services.discovery.nodes().filter(n => seedIds.has(n.id.toString())).length
      await until(() => known() >= want, 30_000)
      finalRejoinedSeeds = known()
      corruptCounted = (node.services.discovery as unknown as { db: NodeDB }).db.stats.corruptRecords
      await group.stopOne(node)
    } catch (err: any) {
      fail(`final restart: ${String(err?.message ?? err)}`)
    }
    let corruptLeft = 0
    for await (const { value } of level.query({ prefix: NODES_PREFIX })) {
      corruptLeft += typeof decodeFields(value) === 'string' ? 1 : 0
    }
    return {
      kills: size.kills,
      batchesBeforeKills,
      restartsStarted,
      restartsRejoined,
      meanRejoinMs: rejoinMs.length === 0 ? 0 : Math.round(rejoinMs.reduce((a, b) => a + b, 0) / rejoinMs.length),
      recordsOnDisk,
      tornRecordsOnDisk,
      finalStarted,
      finalRejoinedSeeds,
      corruptCounted,
      corruptLeft,
      firstFailure,
      rejections: watch.rejections.length
    }
  } finally {
    child?.process.kill('SIGKILL')
    await child?.exited
    watch.stop()
    await group.stop()
    await level?.close().catch(() => {})
    await rm(folder, { recursive: true, force: true })
  }
}

/** The claims of the crash scenario. */
export function checkCrash (f: CrashFigures, size: CrashSize): string[] {
  return new Claims()
    .claim('restarts-started', f.restartsStarted === size.kills - 1, `${size.kills - 1 - f.restartsStarted} restarts failed to start: ${f.firstFailure}`)
    .claim('restarts-rejoined', f.restartsRejoined === size.kills - 1, `${size.kills - 1 - f.restartsRejoined} restarts did not rejoin from their seeds: ${f.firstFailure}`)
    .claim('torn-on-disk', f.tornRecordsOnDisk > 0, 'no corrupt record was on disk: the crash test tested nothing')
    .claim('final-started', f.finalStarted, `the last restart failed: ${f.firstFailure}`)
    .claim('final-rejoined', f.finalRejoinedSeeds >= Math.min(4, size.seeds), `the last restart found only ${f.finalRejoinedSeeds} seed nodes`)
    .claim('corrupt-dropped', f.corruptCounted > 0 && f.corruptLeft === 0, `corrupt records: ${f.corruptCounted} counted, ${f.corruptLeft} left`)
    .claim('rejections', f.rejections === 0, `${f.rejections} unhandled rejections`)
    .failed
}

/** SIGKILL while writing the node database, then restart. */
export const crash: Scenario<CrashSize, CrashFigures> = {
  name: 'crash',
  title: 'crash (SIGKILL) while writing the node database, then restart over the same LevelDB folder',
  fast: { seeds: 5, kills: 3, batch: 100 },
  full: { seeds: 10, kills: 25, batch: 200 },
  run: runCrash,
  check: checkCrash
}
