import assert from 'node:assert/strict'
import { defaultLogger } from '@libp2p/logger'
import { multiaddr } from '@multiformats/multiaddr'
import { Key } from 'interface-datastore'
import { hour, minute, NODE_EXPIRATION, SEED_MIN_TABLE_TIME } from '../../src/constants.js'
import { NodeDB } from '../../src/store/node-db.js'
import { NodeRecord } from '../../src/store/pb/record.js'
import { seededRandom } from '../../src/table/random.js'
import { DATASTORE_KINDS, memoryDatastore, openNodeDB, tableNode } from '../utils/datastore.js'
import { fakePeerId, tcpAddr } from '../utils/peers.js'
import type { NodeDBInit } from '../../src/store/node-db.js'
import type { TestDatastore } from '../utils/datastore.js'
import type { PeerInfo } from '@libp2p/interface'

const sortedIds = (infos: PeerInfo[]): string[] => infos.map(i => i.id.toString()).sort()

for (const kind of DATASTORE_KINDS) {
  describe(`NodeDB on a ${kind.name}`, () => {
    let store: TestDatastore

    beforeEach(async () => {
      store = await kind.create()
    })

    afterEach(async () => {
      await store.cleanup()
    })

    describe('open', () => {
      it('writes the schema version under /kad-discovery/version', async () => {
        await openNodeDB(store.datastore)
        const version = await store.datastore.get(new Key('/kad-discovery/version'))
        assert.equal(new TextDecoder().decode(version), '1')
      })

      it('clears only its own prefix when the schema version differs', async () => {
        const others = ['/other/key', '/kad-discovery-other/nodes/x', '/kad-discoveryx', '/peers/abc']
        for (const key of others) {
          await store.datastore.put(new Key(key), Uint8Array.of(1, 2, 3))
        }
        await store.datastore.put(new Key('/kad-discovery/version'), new TextEncoder().encode('0'))
        await store.datastore.put(new Key('/kad-discovery/nodes/old'), Uint8Array.of(9))
        await store.datastore.put(new Key('/kad-discovery/something/else'), Uint8Array.of(9))

        const { db } = await openNodeDB(store.datastore)

        assert.equal(db.stats.schemaResets, 1)
        assert.equal(await db.size(), 0)
        assert.equal(await store.datastore.has(new Key('/kad-discovery/something/else')), false)
        for (const key of others) {
          assert.deepEqual([...await store.datastore.get(new Key(key))], [1, 2, 3], key)
        }
        const version = await store.datastore.get(new Key('/kad-discovery/version'))
        assert.equal(new TextDecoder().decode(version), '1')
      })

      it('clears records left without a version key', async () => {
        await store.datastore.put(new Key('/kad-discovery/nodes/old'), Uint8Array.of(9))
        const { db } = await openNodeDB(store.datastore)
        assert.equal(await db.size(), 0)
        assert.equal(db.stats.schemaResets, 1)
      })

      it('keeps its records when the version matches', async () => {
        const random = seededRandom(1)
        const { db } = await openNodeDB(store.datastore)
        await db.copyLiveNodes([tableNode(random, 1), tableNode(random, 2)])
        const { db: again } = await openNodeDB(store.datastore)
        assert.equal(await again.size(), 2)
        assert.equal(again.stats.schemaResets, 0)
      })
    })

    describe('times of a node', () => {
      it('reads 0 for a node it knows nothing of', async () => {
        const { db } = await openNodeDB(store.datastore)
        const id = fakePeerId(seededRandom(1))
        assert.equal(await db.lastPongReceived(id), 0)
        assert.equal(await db.lastPingSent(id), 0)
        assert.equal(await db.findFails(id), 0)
      })

      it('keeps the times of a node without a record in memory and writes nothing', async () => {
        const { db } = await openNodeDB(store.datastore)
        const id = fakePeerId(seededRandom(1))
        await db.updateLastPongReceived(id, 1000)
        await db.updateLastPingSent(id, 900)
        await db.updateFindFails(id, 3)
        assert.equal(await db.lastPongReceived(id), 1000)
        assert.equal(await db.lastPingSent(id), 900)
        assert.equal(await db.findFails(id), 3)
        assert.equal(await db.size(), 0)
        assert.equal(db.pendingSize, 1)
      })

      it('writes the times of a node with a record through to the datastore', async () => {
        const node = tableNode(seededRandom(1), 1)
        const { db } = await openNodeDB(store.datastore)
        await db.copyLiveNodes([node])
        await db.updateLastPongReceived(node.id, 5000)
        await db.updateLastPingSent(node.id, 4000)
        await db.updateFindFails(node.id, 2)
        assert.equal(db.pendingSize, 0)

        const { db: other } = await openNodeDB(store.datastore)
        assert.equal(await other.lastPongReceived(node.id), 5000)
        assert.equal(await other.lastPingSent(node.id), 4000)
        assert.equal(await other.findFails(node.id), 2)
      })
    })

    describe('updateNode', () => {
      it('creates a record with firstSeen now and the times kept in memory', async () => {
        const { db, clock } = await openNodeDB(store.datastore)
        const id = fakePeerId(seededRandom(1))
        await db.updateFindFails(id, 4)
        await db.updateLastPongReceived(id, clock.now - minute)
        await db.updateNode({ id, multiaddrs: [tcpAddr('51.15.0.1')] })

        assert.equal(db.pendingSize, 0)
        const record = NodeRecord.decode(await store.datastore.get(new Key(`/kad-discovery/nodes/${id.toString()}`)))
        assert.equal(record.firstSeen, BigInt(clock.now))
        assert.equal(record.findFails, 4)
        assert.equal(record.lastPongReceived, BigInt(clock.now - minute))
        assert.deepEqual(record.addrs.map(a => multiaddr(a).toString()), ['/ip4/51.15.0.1/tcp/4001'])
      })

      it('replaces the addresses of a stored node and keeps its times and firstSeen', async () => {
        const { db, clock } = await openNodeDB(store.datastore)
        const id = fakePeerId(seededRandom(1))
        await db.updateNode({ id, multiaddrs: [tcpAddr('51.15.0.1')] })
        await db.updateLastPongReceived(id, clock.now)
        const firstSeen = clock.now
        clock.now += hour
        await db.updateNode({ id, multiaddrs: [tcpAddr('51.15.0.2'), tcpAddr('51.15.0.3')] })

        const [seed] = await db.querySeeds(1, 2 * hour)
        assert.deepEqual(seed?.multiaddrs.map(String), ['/ip4/51.15.0.2/tcp/4001', '/ip4/51.15.0.3/tcp/4001'])
        assert.equal(await db.lastPongReceived(id), firstSeen)
        const record = NodeRecord.decode(await store.datastore.get(new Key(`/kad-discovery/nodes/${id.toString()}`)))
        assert.equal(record.firstSeen, BigInt(firstSeen))
      })
    })

    describe('copyLiveNodes', () => {
      it('writes only nodes in the table for seedMinTableTime that passed a liveness check', async () => {
        const random = seededRandom(1)
        const { db, clock } = await openNodeDB(store.datastore)
        const old = clock.now - SEED_MIN_TABLE_TIME
        const copied = [tableNode(random, 1, { addedAt: old }), tableNode(random, 2, { addedAt: old - hour, livenessChecks: 5 })]
        const skipped = [
          tableNode(random, 3, { addedAt: old + 1 }),
          tableNode(random, 4, { addedAt: old, livenessChecks: 0 })
        ]
        assert.equal(await db.copyLiveNodes([...copied, ...skipped]), 2)
        assert.deepEqual(sortedIds(await db.querySeeds(10, hour)), sortedIds(copied.map(n => ({ id: n.id, multiaddrs: [] }))))
      })

      it('never writes the local node', async () => {
        const random = seededRandom(1)
        const self = fakePeerId(random)
        const { db } = await openNodeDB(store.datastore, { self })
        assert.equal(await db.copyLiveNodes([tableNode(random, 1, { id: self })]), 0)
        assert.equal(await db.size(), 0)
      })

      it('sets lastPongReceived to now when no pong is known, and keeps a known one', async () => {
        const random = seededRandom(1)
        const { db, clock } = await openNodeDB(store.datastore)
        const [silent, pending, stored] = [tableNode(random, 1), tableNode(random, 2), tableNode(random, 3)]
        await db.updateLastPongReceived(pending.id, clock.now - 2 * minute)
        await db.updateLastPingSent(pending.id, clock.now - 3 * minute)
        await db.copyLiveNodes([stored])
        await db.updateLastPongReceived(stored.id, clock.now - minute)

        clock.now += minute
        assert.equal(await db.copyLiveNodes([silent, pending, stored]), 3)

        assert.equal(await db.lastPongReceived(silent.id), clock.now)
        assert.equal(await db.lastPongReceived(pending.id), clock.now - 3 * minute)
        assert.equal(await db.lastPingSent(pending.id), clock.now - 4 * minute)
        assert.equal(await db.lastPongReceived(stored.id), clock.now - 2 * minute)
        assert.equal(db.pendingSize, 0)
      })

      it('keeps firstSeen from the first write and takes the table addresses', async () => {
        const random = seededRandom(1)
        const { db, clock } = await openNodeDB(store.datastore)
        const node = tableNode(random, 1)
        await db.copyLiveNodes([node])
        const firstSeen = clock.now
        clock.now += hour
        node.addrs = [tcpAddr('51.15.9.9')]
        await db.copyLiveNodes([node])

        const record = NodeRecord.decode(await store.datastore.get(new Key(`/kad-discovery/nodes/${node.id.toString()}`)))
        assert.equal(record.firstSeen, BigInt(firstSeen))
        assert.deepEqual(record.addrs.map(a => multiaddr(a).toString()), ['/ip4/51.15.9.9/tcp/4001'])
      })

      it('writes a full table (17 × 16 nodes) in one batch', async () => {
        const random = seededRandom(1)
        const calls = { batch: 0, commit: 0, put: 0 }
        const datastore = store.datastore
        // a spy over the real datastore: counts how it is written, changes nothing
        const spy = new Proxy(datastore, {
          get (target, prop, receiver) {
            if (prop === 'put') {
              return async (...args: Parameters<typeof datastore.put>) => { calls.put++; return datastore.put(...args) }
            }
            if (prop === 'batch') {
              return () => {
                calls.batch++
                const batch = datastore.batch()
                return { put: batch.put.bind(batch), delete: batch.delete.bind(batch), commit: async () => { calls.commit++; await batch.commit() } }
              }
            }
            return Reflect.get(target, prop, receiver)
          }
        })
        const { db } = await openNodeDB(spy)
        Object.assign(calls, { batch: 0, commit: 0, put: 0 })
        const nodes = Array.from({ length: 17 * 16 }, (_, i) => tableNode(random, i))

        assert.equal(await db.copyLiveNodes(nodes), 272)
        assert.deepEqual(calls, { batch: 1, commit: 1, put: 0 })
        assert.equal(await db.size(), 272)
      })
    })

    describe('querySeeds', () => {
      it('returns only nodes that answered within maxAge', async () => {
        const random = seededRandom(1)
        const { db, clock } = await openNodeDB(store.datastore)
        const nodes = Array.from({ length: 6 }, (_, i) => tableNode(random, i))
        await db.copyLiveNodes(nodes)
        for (const [i, node] of nodes.entries()) {
          await db.updateLastPongReceived(node.id, clock.now - i * hour)
        }
        const seeds = await db.querySeeds(10, 2 * hour)
        assert.deepEqual(sortedIds(seeds), sortedIds(nodes.slice(0, 3).map(n => ({ id: n.id, multiaddrs: [] }))))
      })

      it('returns at most n distinct nodes, drawn with the injected random source', async () => {
        const random = seededRandom(1)
        const nodes = Array.from({ length: 40 }, (_, i) => tableNode(random, i))
        const { db } = await openNodeDB(store.datastore, { random: seededRandom(7) })
        await db.copyLiveNodes(nodes)
        const seen = new Set<string>()
        for (let round = 0; round < 20; round++) {
          const ids = sortedIds(await db.querySeeds(10, hour))
          assert.equal(ids.length, 10)
          assert.equal(new Set(ids).size, 10)
          ids.forEach(id => seen.add(id))
        }
        // 20 draws of 10 from 40 miss a given node with probability 0.75^20 ≈ 0.3 %
        assert.ok(seen.size > 30, `only ${seen.size} distinct seeds in 20 draws`)

        const { db: same } = await openNodeDB(store.datastore, { random: seededRandom(7) })
        const { db: again } = await openNodeDB(store.datastore, { random: seededRandom(7) })
        assert.deepEqual(sortedIds(await same.querySeeds(10, hour)), sortedIds(await again.querySeeds(10, hour)))
      })

      it('gives every young node the same chance to be a seed', async () => {
        const random = seededRandom(1)
        const nodes = Array.from({ length: 50 }, (_, i) => tableNode(random, i))
        const { db } = await openNodeDB(store.datastore, { random: seededRandom(3) })
        await db.copyLiveNodes(nodes)
        const counts = new Map<string, number>()
        for (let round = 0; round < 300; round++) {
          for (const seed of await db.querySeeds(5, hour)) {
            counts.set(seed.id.toString(), (counts.get(seed.id.toString()) ?? 0) + 1)
          }
        }
        // 30 expected each, standard deviation ≈ 5.2
        for (const node of nodes) {
          const count = counts.get(node.id.toString()) ?? 0
          assert.ok(count > 10 && count < 55, `${node.id.toString()} was a seed ${count} times`)
        }
      })

      it('never returns the local node', async () => {
        const random = seededRandom(1)
        const self = fakePeerId(random)
        const { db } = await openNodeDB(store.datastore)
        await db.copyLiveNodes([tableNode(random, 1, { id: self }), tableNode(random, 2)])
        const { db: selfDb } = await openNodeDB(store.datastore, { self })
        const seeds = await selfDb.querySeeds(10, hour)
        assert.equal(seeds.length, 1)
        assert.ok(!seeds[0]?.id.equals(self))
      })

      it('returns the stored peer ids and multiaddrs', async () => {
        const node = tableNode(seededRandom(1), 1)
        node.addrs = [tcpAddr('51.15.0.1'), multiaddr('/dns4/example.com/tcp/443/wss'), tcpAddr('2001:db8::1')]
        const { db } = await openNodeDB(store.datastore)
        await db.copyLiveNodes([node])
        const [seed] = await db.querySeeds(1, hour)
        assert.ok(seed != null && seed.id.equals(node.id))
        assert.deepEqual(seed.multiaddrs.map(String), node.addrs.map(String))
      })

      it('returns nothing for n = 0 and rejects a bad n or maxAge', async () => {
        const { db } = await openNodeDB(store.datastore)
        await db.copyLiveNodes([tableNode(seededRandom(1), 1)])
        assert.deepEqual(await db.querySeeds(0, hour), [])
        for (const [n, maxAge] of [[-1, hour], [1.5, hour], [Number.NaN, hour], [1, -1], [1, Number.NaN]] as const) {
          await assert.rejects(db.querySeeds(n, maxAge), { name: 'InvalidParametersError' }, `${n}, ${maxAge}`)
        }
      })
    })

    describe('expireNodes', () => {
      it('removes every node with no pong for nodeExpiration and keeps the rest', async () => {
        const random = seededRandom(1)
        const { db, clock } = await openNodeDB(store.datastore)
        const nodes = Array.from({ length: 4 }, (_, i) => tableNode(random, i))
        await db.copyLiveNodes(nodes)
        const ages = [0, NODE_EXPIRATION - 1, NODE_EXPIRATION, NODE_EXPIRATION + hour]
        for (const [i, node] of nodes.entries()) {
          await db.updateLastPongReceived(node.id, clock.now - (ages[i] ?? 0))
        }

        assert.equal(await db.expireNodes(), 2)
        assert.equal(db.stats.expired, 2)
        assert.deepEqual(sortedIds(await db.querySeeds(10, 2 * NODE_EXPIRATION)), sortedIds(nodes.slice(0, 2).map(n => ({ id: n.id, multiaddrs: [] }))))
        assert.equal(await db.expireNodes(), 0)
      })

      it('takes the time from its argument, and nodeExpiration from init', async () => {
        const random = seededRandom(1)
        const { db, clock } = await openNodeDB(store.datastore, { nodeExpiration: hour })
        await db.copyLiveNodes([tableNode(random, 1)])
        assert.equal(await db.expireNodes(clock.now + hour - 1), 0)
        assert.equal(await db.expireNodes(clock.now + hour), 1)
        assert.equal(await db.size(), 0)
      })
    })

    describe('deleteNode', () => {
      it('forgets the record and the times kept in memory', async () => {
        const random = seededRandom(1)
        const { db } = await openNodeDB(store.datastore)
        const [stored, pending] = [tableNode(random, 1), tableNode(random, 2)]
        await db.copyLiveNodes([stored])
        await db.updateFindFails(pending.id, 2)
        await db.deleteNode(stored.id)
        await db.deleteNode(pending.id)
        assert.equal(await db.size(), 0)
        assert.equal(await db.findFails(pending.id), 0)
        assert.equal(await db.lastPongReceived(stored.id), 0)
      })
    })

    describe('persistence', () => {
      it('gives the same seeds back from a new instance after the datastore is reopened', async () => {
        const random = seededRandom(1)
        const nodes = Array.from({ length: 30 }, (_, i) => tableNode(random, i))
        const { db } = await openNodeDB(store.datastore)
        await db.copyLiveNodes(nodes)
        await db.updateFindFails(nodes[0]!.id, 3)
        const before = await db.querySeeds(100, hour)

        const { db: after } = await openNodeDB(await store.reopen())

        const seeds = await after.querySeeds(100, hour)
        assert.equal(seeds.length, 30)
        const render = (infos: PeerInfo[]): string[] => infos.map(i => `${i.id.toString()} ${i.multiaddrs.join(',')}`).sort()
        assert.deepEqual(render(seeds), render(before))
        assert.equal(await after.findFails(nodes[0]!.id), 3)
      })
    })
  })
}

describe('NodeDB arguments and edge cases', () => {
  let store: TestDatastore

  beforeEach(async () => {
    store = await memoryDatastore()
  })

  it('refuses a bad init, naming the setting', () => {
    const make = (init: Partial<NodeDBInit>): NodeDB => new NodeDB({ datastore: store.datastore, logger: defaultLogger() }, { clock: () => 0, random: seededRandom(1), ...init })
    assert.throws(() => make({ nodeExpiration: -1 }), { name: 'InvalidParametersError', message: /^nodeExpiration must be a finite non-negative number/ })
    assert.throws(() => make({ seedMinTableTime: Number.NaN }), { name: 'InvalidParametersError', message: /^seedMinTableTime must be/ })
    assert.throws(() => make({ maxPendingNodes: -1 }), { name: 'InvalidParametersError', message: /^maxPendingNodes must be a non-negative integer/ })
    assert.throws(() => make({ maxPendingNodes: 1.5 }), { name: 'InvalidParametersError' })
    assert.doesNotThrow(() => make({ nodeExpiration: 0, seedMinTableTime: 0, maxPendingNodes: 0 }))
  })

  it('takes times, counts and ages of 0 and refuses negative ones, naming the argument', async () => {
    const { db } = await openNodeDB(store.datastore)
    const id = fakePeerId(seededRandom(2))
    await db.updateLastPongReceived(id, 0)
    await db.updateLastPingSent(id, 0)
    await db.updateFindFails(id, 0)
    await db.updateFindFails(id, 0xffffffff)
    assert.equal(await db.findFails(id), 0xffffffff)
    await assert.rejects(db.updateLastPongReceived(id, -1), { name: 'InvalidParametersError', message: /^time must be/ })
    await assert.rejects(db.updateLastPingSent(id, -1), { name: 'InvalidParametersError', message: /^time must be/ })
    await assert.rejects(db.updateFindFails(id, -1), { name: 'InvalidParametersError', message: /^fails must be an integer in \[0, 2\^32\)/ })
    await assert.rejects(db.updateFindFails(id, 0x100000000), { name: 'InvalidParametersError' })
    await assert.rejects(db.expireNodes(-1), { name: 'InvalidParametersError', message: /^now must be/ })
    await assert.rejects(db.copyLiveNodes([], -1), { name: 'InvalidParametersError', message: /^now must be/ })
    await assert.rejects(db.querySeeds(-1, 0), { name: 'InvalidParametersError', message: /^n must be a non-negative integer/ })
    await assert.rejects(db.querySeeds(1, -1), { name: 'InvalidParametersError', message: /^maxAge must be a non-negative number/ })
  })

  it('counts a FIND_NODE answer as a pong when told when, and only then', async () => {
    const { db } = await openNodeDB(store.datastore)
    const id = fakePeerId(seededRandom(3))
    assert.equal(await db.recordFindnode(id, true), 0)
    assert.equal(await db.lastPongReceived(id), 0)
    assert.equal(await db.recordFindnode(id, true, 1234), 0)
    assert.equal(await db.lastPongReceived(id), 1234)
    await assert.rejects(db.recordFindnode(id, true, -1), { name: 'InvalidParametersError', message: /^pongAt must be/ })
  })

  it('refuses to store a node without addresses, or the local node', async () => {
    const self = fakePeerId(seededRandom(4))
    const { db } = await openNodeDB(store.datastore, { self })
    await assert.rejects(db.updateNode({ id: fakePeerId(seededRandom(5)), multiaddrs: [] }), { name: 'InvalidParametersError', message: /at least one multiaddr/ })
    await assert.rejects(db.updateNode({ id: self, multiaddrs: [tcpAddr('51.15.0.1')] }), { name: 'InvalidParametersError', message: /never stored/ })
  })

  it('returns a node that answered exactly maxAge ago, and takes maxAge 0', async () => {
    const { db, clock } = await openNodeDB(store.datastore)
    await db.copyLiveNodes([tableNode(seededRandom(6), 1)], clock())
    assert.equal((await db.querySeeds(1, 0)).length, 1)
    clock.now += hour
    assert.equal((await db.querySeeds(1, hour)).length, 1)
  })

  it('copies no live node that has no address', async () => {
    const { db } = await openNodeDB(store.datastore)
    assert.equal(await db.copyLiveNodes([tableNode(seededRandom(7), 1, { addrs: [] })]), 0)
    assert.equal(await db.size(), 0)
  })

  it('counts a schema reset only when there was something to reset', async () => {
    const fresh = await openNodeDB(store.datastore)
    assert.equal(fresh.db.stats.schemaResets, 0, 'a first start is no reset')
    const other = await memoryDatastore()
    await other.datastore.put(new Key('/kad-discovery/version'), new TextEncoder().encode('0'))
    const old = await openNodeDB(other.datastore)
    assert.equal(old.db.stats.schemaResets, 1, 'another version, though nothing else was stored')
  })

  it('counts an undecodable record found by expireNodes as undecodable', async () => {
    const { db } = await openNodeDB(store.datastore)
    await store.datastore.put(new Key(`/kad-discovery/nodes/${fakePeerId(seededRandom(8)).toString()}`), Uint8Array.of(0xff, 0xff, 0xff))
    await db.expireNodes()
    assert.equal(db.stats.undecodable, 1)
    assert.equal(db.stats.invalidMultiaddr, 0)
    assert.equal(await db.size(), 0)
  })
})
