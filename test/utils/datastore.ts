import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { MemoryDatastore } from 'datastore-core'
import { LevelDatastore } from 'datastore-level'
import { NodeDB } from '../../src/store/node-db.js'
import { keyOf } from '../../src/table/key.js'
import { seededRandom } from '../../src/table/random.js'
import { fakePeerId, intIP, tcpAddr } from './peers.js'
import type { NodeDBInit } from '../../src/store/node-db.js'
import type { RandomSource, TableNode } from '../../src/table/types.js'
import type { Datastore } from 'interface-datastore'

/** A datastore for one test, with what it takes to restart it and to clean up after it. */
export interface TestDatastore {
  /** The open datastore. */
  datastore: Datastore
  /**
   * Closes the datastore and opens the same data again in a new instance, as a process
   * restart would; `datastore` is the new one afterwards. A memory store has nothing to
   * close, so it stays the same instance.
   */
  reopen(): Promise<Datastore>
  /** Closes the datastore (if it is open) and removes what it left on disk. */
  cleanup(): Promise<void>
}

/** A way of making test datastores, named for `describe`. */
export interface DatastoreKind {
  /** What `describe` calls it. */
  name: string
  /** A fresh, open, empty datastore. */
  create(): Promise<TestDatastore>
}

/** A `LevelDatastore` in a new folder under the OS temp dir, removed by `cleanup`. */
export async function tempLevelDatastore (): Promise<TestDatastore> {
  const path = await mkdtemp(join(tmpdir(), 'kad-discovery-node-db-'))
  let level = new LevelDatastore(path)
  await level.open()
  const test: TestDatastore = {
    datastore: level,
    async reopen () {
      await level.close()
      level = new LevelDatastore(path)
      await level.open()
      test.datastore = level
      return level
    },
    async cleanup () {
      // close is idempotent in level, so a test may have closed it already
      await level.close()
      await rm(path, { recursive: true, force: true })
    }
  }
  return test
}

/** A `MemoryDatastore` (from `datastore-core`). */
export async function memoryDatastore (): Promise<TestDatastore> {
  const datastore = new MemoryDatastore()
  return {
    datastore,
    reopen: async () => datastore,
    cleanup: async () => {}
  }
}

/** Every datastore the store's suites run on: LevelDB on disk, and memory. */
export const DATASTORE_KINDS: DatastoreKind[] = [
  { name: 'LevelDatastore', create: tempLevelDatastore },
  { name: 'MemoryDatastore', create: memoryDatastore }
]

/** The clock the node database tests use: a start time and a field they move. */
export interface TestClock {
  (): number
  /** The time the clock reads, ms. */
  now: number
}

/** A hand-moved clock starting at `start` ms. */
export function testClock (start = 1_700_000_000_000): TestClock {
  const clock = (() => clock.now) as TestClock
  clock.now = start
  return clock
}

/** A `NodeDB` on `datastore`, opened, with a test clock and a seeded random source. */
export async function openNodeDB (datastore: Datastore, init: Partial<NodeDBInit> = {}): Promise<{ db: NodeDB, clock: TestClock }> {
  const clock = testClock()
  const db = new NodeDB({ datastore, logger: defaultLogger() }, { clock, random: seededRandom(1), ...init })
  await db.open()
  return { db, clock }
}

/**
 * A table node as `Table.nodes()` would hand it out: live (one liveness check) and in the
 * table since `addedAt`, with one public TCP address `51.15.x.y` from `n`.
 */
export function tableNode (random: RandomSource, n: number, init: Partial<TableNode> = {}): TableNode {
  const id = init.id ?? fakePeerId(random)
  return {
    id,
    key: keyOf(id),
    addrs: [tcpAddr(intIP(n))],
    addedAt: 0,
    livenessChecks: 1,
    ...init
  }
}
