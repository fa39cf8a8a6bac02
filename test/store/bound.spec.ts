import assert from 'node:assert/strict'
import { hour, NODE_EXPIRATION } from '../../src/constants.js'
import { MAX_PENDING_NODES } from '../../src/store/node-db.js'
import { seededRandom } from '../../src/table/random.js'
import { DATASTORE_KINDS, openNodeDB, tableNode } from '../utils/datastore.js'
import { fakePeerId } from '../utils/peers.js'
import type { TableNode } from '../../src/table/types.js'
import type { TestDatastore } from '../utils/datastore.js'

for (const kind of DATASTORE_KINDS) {
  describe(`NodeDB bounds on a ${kind.name}`, () => {
    let store: TestDatastore

    beforeEach(async () => {
      store = await kind.create()
    })

    afterEach(async () => {
      await store.cleanup()
    })

    it('keeps the times of at most maxPendingNodes nodes without a record, forgetting the oldest', async () => {
      const random = seededRandom(1)
      const { db } = await openNodeDB(store.datastore, { maxPendingNodes: 3 })
      const ids = Array.from({ length: 5 }, () => fakePeerId(random))
      for (const [i, id] of ids.entries()) {
        await db.updateFindFails(id, i + 1)
      }
      // touching the oldest makes it the newest
      await db.updateLastPongReceived(ids[2]!, 7)
      await db.updateFindFails(ids[0]!, 9)

      assert.equal(db.pendingSize, 3)
      assert.equal(db.stats.pendingEvicted, 3)
      assert.deepEqual(await Promise.all(ids.map(async id => db.findFails(id))), [9, 0, 3, 0, 5])
      assert.equal(await db.size(), 0)
    })

    it(`writes no record for nodes that only answered or failed, and remembers at most ${MAX_PENDING_NODES} of them by default`, async () => {
      const random = seededRandom(1)
      const { db, clock } = await openNodeDB(store.datastore)
      for (let i = 0; i < MAX_PENDING_NODES + 50; i++) {
        const id = fakePeerId(random)
        await db.updateLastPongReceived(id, clock.now)
        await db.updateFindFails(id, 1)
      }
      assert.equal(db.pendingSize, MAX_PENDING_NODES)
      assert.equal(db.stats.pendingEvicted, 50)
      assert.equal(await db.size(), 0)
    })

    it('holds only nodes that were live in the table, each until nodeExpiration after its last pong', async () => {
      // a table of 32 in which 8 nodes are replaced every hour, for 60 hours; the service
      // reports a pong from every live node each hour, copies live nodes and expires hourly
      const random = seededRandom(1)
      const tableSize = 32
      const churn = 8
      const { db, clock } = await openNodeDB(store.datastore)
      let table: TableNode[] = Array.from({ length: tableSize }, (_, i) => tableNode(random, i, { addedAt: clock.now, livenessChecks: 0 }))
      const lastPong = new Map<string, number>()
      const copied = new Set<string>()

      for (let h = 1; h <= 60; h++) {
        clock.now += hour
        for (const node of table) {
          node.livenessChecks++
          lastPong.set(node.id.toString(), clock.now)
          await db.updateLastPongReceived(node.id, clock.now)
        }
        await db.copyLiveNodes(table)
        table.forEach(node => copied.add(node.id.toString()))
        await db.expireNodes()
        table = [
          ...table.slice(churn),
          ...Array.from({ length: churn }, (_, i) => tableNode(random, h * churn + i, { addedAt: clock.now, livenessChecks: 0 }))
        ]
      }

      const stored = (await db.querySeeds(10_000, Infinity)).map(s => s.id.toString()).sort()
      const expected = [...copied].filter(id => (lastPong.get(id) ?? 0) > clock.now - NODE_EXPIRATION).sort()
      assert.deepEqual(stored, expected)
      // the documented bound: the table plus the nodes that left it in the last 24 h
      assert.ok(stored.length <= tableSize + churn * (NODE_EXPIRATION / hour), `${stored.length} records`)
      assert.ok(db.stats.expired > 0, 'nothing expired: the test did not reach the bound')
      assert.equal(db.pendingSize, 0)
    })
  })
}
