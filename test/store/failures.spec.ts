import assert from 'node:assert/strict'
import { defaultLogger } from '@libp2p/logger'
import { MemoryDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'
import { hour } from '../../src/constants.js'
import { NodeDB } from '../../src/store/node-db.js'
import { seededRandom } from '../../src/table/random.js'
import { openNodeDB, tableNode, tempLevelDatastore, testClock } from '../utils/datastore.js'
import { fakePeerId, tcpAddr } from '../utils/peers.js'
import type { AbortOptions } from '@libp2p/interface'
import type { KeyQuery, Pair, Query } from 'interface-datastore'

/** A memory datastore that fails on demand: the one stand-in these tests use. */
class FailingDatastore extends MemoryDatastore {
  /** Every call throws while set. */
  broken = false
  /** Only deletes throw while set. */
  failDeletes = false

  override put (key: Key, value: Uint8Array, options?: AbortOptions): Key | Promise<Key> {
    this.check()
    return super.put(key, value, options)
  }

  override get (key: Key, options?: AbortOptions): Uint8Array | Promise<Uint8Array> {
    this.check()
    return super.get(key, options)
  }

  override delete (key: Key, options?: AbortOptions): void | Promise<void> {
    this.check()
    if (this.failDeletes) {
      throw new Error('delete refused')
    }
    return super.delete(key, options)
  }

  override query (q: Query, options?: AbortOptions): AsyncGenerator<Pair> | Generator<Pair> {
    this.check()
    return super.query(q, options)
  }

  override queryKeys (q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> | Generator<Key> {
    this.check()
    return super.queryKeys(q, options)
  }

  private check (): void {
    if (this.broken) {
      throw new Error('disk on fire')
    }
  }
}

/** Every public call of a node database, each a thunk, named. */
function everyCall (db: NodeDB): Array<[string, () => Promise<unknown>]> {
  const random = seededRandom(3)
  const id = fakePeerId(random)
  return [
    ['open', async () => db.open()],
    ['lastPongReceived', async () => db.lastPongReceived(id)],
    ['updateLastPongReceived', async () => db.updateLastPongReceived(id, 1)],
    ['lastPingSent', async () => db.lastPingSent(id)],
    ['updateLastPingSent', async () => db.updateLastPingSent(id, 1)],
    ['findFails', async () => db.findFails(id)],
    ['updateFindFails', async () => db.updateFindFails(id, 1)],
    ['updateNode', async () => db.updateNode({ id, multiaddrs: [tcpAddr('51.15.0.1')] })],
    ['querySeeds', async () => db.querySeeds(30, hour)],
    ['expireNodes', async () => db.expireNodes()],
    ['copyLiveNodes', async () => db.copyLiveNodes([tableNode(random, 1)])],
    ['deleteNode', async () => db.deleteNode(id)],
    ['size', async () => db.size()]
  ]
}

describe('NodeDB when the datastore fails', () => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }

  beforeEach(() => {
    unhandled.length = 0
    process.on('unhandledRejection', onUnhandled)
  })

  afterEach(() => {
    process.off('unhandledRejection', onUnhandled)
  })

  // an unhandled rejection is reported after the microtask queue drains
  async function assertNoUnhandledRejections (): Promise<void> {
    await new Promise(resolve => setTimeout(resolve, 10))
    assert.deepEqual(unhandled, [])
  }

  it('rejects every call on a closed LevelDatastore, and nothing goes unhandled', async () => {
    const store = await tempLevelDatastore()
    try {
      const { db } = await openNodeDB(store.datastore)
      await db.copyLiveNodes([tableNode(seededRandom(1), 1)])
      await (store.datastore as unknown as { close(): Promise<void> }).close()
      for (const [name, call] of everyCall(db)) {
        await assert.rejects(call(), `${name} should reject`)
      }
      await assertNoUnhandledRejections()
    } finally {
      await store.cleanup()
    }
  })

  it('rejects every call with the error of a throwing datastore, then works again once it recovers', async () => {
    const datastore = new FailingDatastore()
    const { db } = await openNodeDB(datastore)
    datastore.broken = true
    for (const [name, call] of everyCall(db)) {
      await assert.rejects(call(), { message: 'disk on fire' }, `${name} should reject`)
    }
    await assertNoUnhandledRejections()

    datastore.broken = false
    const node = tableNode(seededRandom(1), 1)
    assert.equal(await db.copyLiveNodes([node]), 1)
    assert.equal((await db.querySeeds(1, hour)).length, 1)
  })

  it('returns the seeds and counts the failure when deleting corrupt records fails', async () => {
    const datastore = new FailingDatastore()
    const { db } = await openNodeDB(datastore)
    await db.copyLiveNodes([tableNode(seededRandom(1), 1)])
    const bad = new Key(`/kad-discovery/nodes/${fakePeerId(seededRandom(2)).toString()}`)
    await datastore.put(bad, Uint8Array.of(0xff))
    datastore.failDeletes = true

    assert.equal((await db.querySeeds(10, hour)).length, 1)
    assert.equal(await db.expireNodes(), 0)

    assert.equal(db.stats.failedDeletes, 2)
    assert.equal(db.stats.corruptRecords, 2)
    assert.equal(await datastore.has(bad), true)
    await assertNoUnhandledRejections()
  })
})

describe('NodeDB arguments', () => {
  const components = { datastore: new MemoryDatastore(), logger: defaultLogger() }
  const base = { clock: testClock(), random: seededRandom(1) }

  it('refuses a negative or non-finite nodeExpiration or seedMinTableTime, and a bad maxPendingNodes', () => {
    for (const init of [{ nodeExpiration: -1 }, { nodeExpiration: Number.NaN }, { seedMinTableTime: Infinity }, { maxPendingNodes: -1 }, { maxPendingNodes: 1.5 }]) {
      assert.throws(() => new NodeDB(components, { ...base, ...init }), { name: 'InvalidParametersError' }, JSON.stringify(init))
    }
  })

  it('rejects bad times, findFails and nodes without an address or that are the local node', async () => {
    const self = fakePeerId(seededRandom(2))
    const db = new NodeDB(components, { ...base, self })
    const id = fakePeerId(seededRandom(1))
    const bad: Array<() => Promise<unknown>> = [
      async () => db.updateLastPongReceived(id, Number.NaN),
      async () => db.updateLastPingSent(id, -5),
      async () => db.updateFindFails(id, -1),
      async () => db.updateFindFails(id, 0.5),
      async () => db.updateNode({ id, multiaddrs: [] }),
      async () => db.updateNode({ id: self, multiaddrs: [tcpAddr('51.15.0.1')] }),
      async () => db.expireNodes(Number.NaN),
      async () => db.copyLiveNodes([], -1)
    ]
    for (const [i, call] of bad.entries()) {
      await assert.rejects(call(), { name: 'InvalidParametersError' }, `call ${i}`)
    }
  })
})
