import assert from 'node:assert/strict'
import { Key } from 'interface-datastore'
import { hour } from '../../src/constants.js'
import { NodeRecord } from '../../src/store/pb/record.js'
import { encodeFields } from '../../src/store/records.js'
import { seededRandom } from '../../src/table/random.js'
import { DATASTORE_KINDS, openNodeDB, tableNode, testClock } from '../utils/datastore.js'
import { fakePeerId, tcpAddr } from '../utils/peers.js'
import type { NodeFields } from '../../src/store/records.js'
import type { TestDatastore } from '../utils/datastore.js'
import type { Datastore } from 'interface-datastore'

const NOW = testClock().now

function goodFields (): NodeFields {
  return { addrs: [tcpAddr('51.15.0.1').bytes], lastPingSent: 0, lastPongReceived: NOW - hour, findFails: 0, firstSeen: NOW - 2 * hour }
}

/**
 * Writes a value straight into the datastore under a node key, as disk damage would leave
 * it, beside the version key a running node would have written.
 */
async function plant (datastore: Datastore, name: string, value: Uint8Array): Promise<Key> {
  await datastore.put(new Key('/kad-discovery/version'), new TextEncoder().encode('1'))
  const key = new Key(`/kad-discovery/nodes/${name}`)
  await datastore.put(key, value)
  return key
}

/** One record of every kind of damage, each under its own key, and `good` sound records. */
async function plantDamage (datastore: Datastore, good: number): Promise<{ bad: Key[], good: string[] }> {
  const random = seededRandom(99)
  const name = (): string => fakePeerId(random).toString()
  const whole = encodeFields(goodFields())
  const bad = [
    await plant(datastore, name(), Uint8Array.of(0xde, 0xad, 0xbe, 0xef)),
    await plant(datastore, name(), whole.subarray(0, whole.length - 3)),
    await plant(datastore, name(), whole.subarray(0, 8)),
    await plant(datastore, name(), new Uint8Array(0)),
    await plant(datastore, name(), encodeFields({ ...goodFields(), addrs: [] })),
    await plant(datastore, 'not-a-peer-id', whole),
    await plant(datastore, fakePeerId(random).toCID().toString(), whole),
    await plant(datastore, name(), encodeFields({ ...goodFields(), addrs: [Uint8Array.of(0xff, 0xff, 0x7f)] })),
    await plant(datastore, name(), NodeRecord.encode({ ...NodeRecord.decode(whole), lastPongReceived: 2n ** 62n }))
  ]
  const names: string[] = []
  for (let i = 0; i < good; i++) {
    names.push(name())
    await plant(datastore, names[i] as string, whole)
  }
  return { bad, good: names }
}

async function present (datastore: Datastore, keys: Key[]): Promise<string[]> {
  const found: string[] = []
  for (const key of keys) {
    if (await datastore.has(key)) {
      found.push(key.toString())
    }
  }
  return found
}

for (const kind of DATASTORE_KINDS) {
  describe(`NodeDB with corrupt records on a ${kind.name}`, () => {
    let store: TestDatastore

    beforeEach(async () => {
      store = await kind.create()
    })

    afterEach(async () => {
      await store.cleanup()
    })

    it('starts over every kind of damage: querySeeds returns the sound nodes and drops the rest', async () => {
      const { bad, good } = await plantDamage(store.datastore, 5)
      const { db } = await openNodeDB(store.datastore)

      const seeds = await db.querySeeds(100, 2 * hour)

      assert.deepEqual(seeds.map(s => s.id.toString()).sort(), [...good].sort())
      assert.deepEqual(await present(store.datastore, bad), [])
      assert.equal(db.stats.corruptRecords, bad.length)
      assert.deepEqual(
        { undecodable: db.stats.undecodable, malformed: db.stats.malformed, invalidPeerId: db.stats.invalidPeerId, invalidMultiaddr: db.stats.invalidMultiaddr },
        { undecodable: 3, malformed: 3, invalidPeerId: 2, invalidMultiaddr: 1 }
      )
      assert.equal(await db.size(), 5)
    })

    it('still returns n seeds when it draws records that turn out corrupt', async () => {
      const { good } = await plantDamage(store.datastore, 5)
      const { db } = await openNodeDB(store.datastore)
      assert.deepEqual((await db.querySeeds(5, 2 * hour)).map(s => s.id.toString()).sort(), [...good].sort())
      // those are the records that decode but fail when drawn
      assert.ok(db.stats.invalidPeerId + db.stats.invalidMultiaddr > 0)
    })

    it('sweeps every corrupt record in expireNodes, even those querySeeds did not draw', async () => {
      const { bad } = await plantDamage(store.datastore, 20)
      const { db } = await openNodeDB(store.datastore)
      await db.querySeeds(1, 2 * hour)

      assert.equal(await db.expireNodes(), 0)

      assert.deepEqual(await present(store.datastore, bad), [])
      assert.equal(db.stats.corruptRecords, bad.length)
      assert.equal(await db.size(), 20)
    })

    it('reads a node whose record is corrupt as unknown, and deletes the record', async () => {
      const id = fakePeerId(seededRandom(1))
      const key = await plant(store.datastore, id.toString(), Uint8Array.of(0x0a, 0x05, 0x01))
      const { db } = await openNodeDB(store.datastore)

      assert.equal(await db.lastPongReceived(id), 0)
      assert.equal(await store.datastore.has(key), false)
      assert.equal(db.stats.undecodable, 1)
    })

    it('keeps in memory the times of a node whose record turned out corrupt', async () => {
      const id = fakePeerId(seededRandom(1))
      await plant(store.datastore, id.toString(), Uint8Array.of(0x0a, 0x05, 0x01))
      const { db } = await openNodeDB(store.datastore)

      await db.updateFindFails(id, 2)

      assert.equal(await db.size(), 0)
      assert.equal(await db.findFails(id), 2)
    })

    it('overwrites a corrupt record of a live table node in copyLiveNodes', async () => {
      const node = tableNode(seededRandom(1), 1)
      await plant(store.datastore, node.id.toString(), Uint8Array.of(0xff))
      const { db, clock } = await openNodeDB(store.datastore)

      assert.equal(await db.copyLiveNodes([node]), 1)

      assert.equal(db.stats.corruptRecords, 1)
      assert.equal(await db.lastPongReceived(node.id), clock.now)
      const [seed] = await db.querySeeds(1, hour)
      assert.ok(seed?.id.equals(node.id))
    })
  })
}
