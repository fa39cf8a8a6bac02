import assert from 'node:assert/strict'
import { seededRandom } from '../../src/table/random.js'
import { DATASTORE_KINDS, openNodeDB, tableNode } from '../utils/datastore.js'
import type { TestDatastore } from '../utils/datastore.js'

for (const kind of DATASTORE_KINDS) {
  describe(`NodeDB recordFindnode (${kind.name})`, () => {
    let store: TestDatastore
    beforeEach(async () => { store = await kind.create() })
    afterEach(async () => { await store.cleanup() })

    it('counts consecutive failures and resets them on a good answer', async () => {
      const { db, clock } = await openNodeDB(store.datastore)
      const node = tableNode(seededRandom(1), 1, { addedAt: clock() - 10 * 60_000, livenessChecks: 1 })
      assert.equal(await db.recordFindnode(node.id, false), 1)
      assert.equal(await db.recordFindnode(node.id, false), 2)
      await db.copyLiveNodes([node], clock())
      assert.equal(await db.recordFindnode(node.id, false), 3, 'the count kept in memory moved into the record')
      assert.equal(await db.findFails(node.id), 3)
      assert.equal(await db.recordFindnode(node.id, true), 0)
      assert.equal(await db.findFails(node.id), 0)
    })

    it('loses no count when many failures are recorded at once', async () => {
      const { db, clock } = await openNodeDB(store.datastore)
      const node = tableNode(seededRandom(2), 2, { addedAt: clock() - 10 * 60_000, livenessChecks: 1 })
      await db.copyLiveNodes([node], clock())
      await Promise.all(Array.from({ length: 20 }, async () => db.recordFindnode(node.id, false)))
      assert.equal(await db.findFails(node.id), 20)
    })
  })
}
