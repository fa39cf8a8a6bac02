import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { sameAddrs, sameNet } from '../../src/table/bucket.js'
import { netAddressOf } from '../../src/table/ip-limits.js'
import { keyOf, logDistance } from '../../src/table/key.js'
import { RevalidationOutcome } from '../../src/table/revalidation.js'
import { AddResult, RemoveReason } from '../../src/table/types.js'
import { tcpAddr } from '../utils/peers.js'
import { checkInvariants, distanceOfBucket, fillBucket, nodeAtDistance, publicIP, testTable } from '../utils/table.js'
import type { TableNode } from '../../src/table/types.js'

const ids = (nodes: Array<{ id: { toString(): string } }>): string[] => nodes.map(n => n.id.toString())

describe('Table', () => {
  describe('bucketAtDistance', () => {
    it('puts log distances up to 240 in bucket 0 and d > 240 in bucket d - 240', () => {
      const { table } = testTable()
      assert.equal(table.nBuckets, 17)
      for (let d = 0; d <= 240; d++) {
        assert.equal(table.bucketAtDistance(d), 0)
      }
      for (let d = 241; d <= 256; d++) {
        assert.equal(table.bucketAtDistance(d), d - 240)
      }
    })

    it('names the log distances each bucket covers', () => {
      const { table } = testTable()
      assert.deepEqual(table.bucketDistances(0), [1, 240])
      assert.deepEqual(table.bucketDistances(1), [241, 241])
      assert.deepEqual(table.bucketDistances(16), [256, 256])
    })

    it('files a node in the bucket of its log distance from self', () => {
      const { table, random } = testTable()
      for (const d of [256, 250, 241, 240]) {
        const node = nodeAtDistance(table, d, publicIP(d), random)
        assert.equal(table.addFoundNode(node), AddResult.Added)
        const bucket = table.buckets().find(b => b.entries.some(e => e.id.equals(node.id)))
        assert.equal(bucket?.index, table.bucketAtDistance(d))
        assert.equal(logDistance(table.selfKey, keyOf(node.id)), d)
      }
    })
  })

  describe('addFoundNode', () => {
    it('refuses self and nodes without an address', () => {
      const { table, self, random } = testTable()
      assert.equal(table.addFoundNode({ id: self, multiaddrs: [tcpAddr('51.15.0.1')] }), AddResult.Self)
      const node = nodeAtDistance(table, 256, publicIP(1), random)
      assert.equal(table.addFoundNode({ id: node.id, multiaddrs: [] }), AddResult.NoAddress)
      assert.equal(table.size, 0)
    })

    it('appends new nodes at the back of their bucket', () => {
      const { table } = testTable()
      const [first, second] = fillBucket(table, 16, testTable().random, 2)
      assert.deepEqual(ids(table.buckets()[16]?.entries ?? []), ids([first!, second!]))
    })

    it('never re-addresses or moves an entry it already holds', () => {
      const { table, random } = testTable()
      const nodes = fillBucket(table, 16, random, 3)
      const target = nodes[2]!
      const result = table.addFoundNode({ id: target.id, multiaddrs: [tcpAddr('6.6.6.6')] })
      assert.equal(result, AddResult.Present)
      const entries = table.buckets()[16]!.entries
      assert.deepEqual(ids(entries), ids(nodes))
      assert.equal(entries[2]!.addrs[0]!.toString(), nodes[2]!.multiaddrs[0]!.toString())
    })

    it('keeps the node as a replacement when the bucket is full', () => {
      const { table, random } = testTable()
      fillBucket(table, 16, random)
      const extra = nodeAtDistance(table, 256, publicIP(999), random)
      assert.equal(table.addFoundNode(extra), AddResult.Replacement)
      const bucket = table.buckets()[16]!
      assert.equal(bucket.entries.length, 16)
      assert.deepEqual(ids(bucket.replacements), ids([extra]))
    })
  })

  describe('addInboundNode', () => {
    it('is ignored until the first refresh is done (initDone)', () => {
      const { table, random } = testTable()
      const node = nodeAtDistance(table, 256, publicIP(1), random)
      assert.equal(table.addInboundNode(node), AddResult.NotReady)
      assert.equal(table.size, 0)
      table.setInitDone()
      assert.equal(table.addInboundNode(node), AddResult.Added)
    })

    it('adds new nodes at the front of their bucket', () => {
      const { table, random } = testTable()
      table.setInitDone()
      const nodes = fillBucket(table, 16, random, 3)
      const inbound = nodeAtDistance(table, 256, publicIP(77), random)
      table.addInboundNode(inbound)
      assert.deepEqual(ids(table.buckets()[16]!.entries), ids([inbound, ...nodes]))
    })

    it('bumps an entry to the front with its new addresses and never duplicates it', () => {
      const { table, random } = testTable()
      table.setInitDone()
      const nodes = fillBucket(table, 16, random, 4)
      const moved = nodes[3]!
      const newAddr = tcpAddr('51.99.0.1')
      for (let i = 0; i < 3; i++) {
        assert.equal(table.addInboundNode({ id: moved.id, multiaddrs: [newAddr] }), AddResult.Bumped)
      }
      const entries = table.buckets()[16]!.entries
      assert.deepEqual(ids(entries), ids([moved, nodes[0]!, nodes[1]!, nodes[2]!]))
      assert.equal(entries[0]!.addrs[0]!.toString(), newAddr.toString())
      assert.equal(table.size, 4)
      checkInvariants(table)
    })

    it('keeps the old address when the new one would break an IP limit', () => {
      const { table, random } = testTable()
      table.setInitDone()
      const d = distanceOfBucket(table, 16)
      const a = nodeAtDistance(table, d, '51.20.0.1', random)
      const b = nodeAtDistance(table, d, '51.20.0.2', random)
      const c = nodeAtDistance(table, d, '51.30.0.1', random)
      for (const n of [a, b, c]) {
        table.addFoundNode(n)
      }
      assert.equal(table.addInboundNode({ id: c.id, multiaddrs: [tcpAddr('51.20.0.3')] }), AddResult.IpLimit)
      assert.equal(table.getNode(c.id)?.addrs[0]?.toString(), c.multiaddrs[0]!.toString())
      checkInvariants(table)
    })
  })

  describe('addReplacement', () => {
    it('keeps at most maxReplacements, newest first, without duplicates', () => {
      const { table, random } = testTable()
      fillBucket(table, 16, random)
      const extras = Array.from({ length: 14 }, (_, i) => nodeAtDistance(table, 256, publicIP(1000 + i), random))
      for (const extra of extras) {
        table.addFoundNode(extra)
        table.addFoundNode(extra)
      }
      const replacements = table.buckets()[16]!.replacements
      assert.equal(replacements.length, 10)
      assert.deepEqual(ids(replacements), ids(extras.slice(4).reverse()))
    })

    it('removes a node from the replacements when it enters the bucket', () => {
      const { table, random } = testTable()
      const nodes = fillBucket(table, 16, random)
      const extra = nodeAtDistance(table, 256, publicIP(500), random)
      table.addFoundNode(extra)
      table.delete(nodes[0]!.id)
      assert.equal(table.addFoundNode(extra), AddResult.Added)
      assert.deepEqual(table.buckets()[16]!.replacements, [])
      checkInvariants(table)
    })

    it('keeps at most bucketIpLimit replacements of one subnet', () => {
      const { table, random } = testTable()
      fillBucket(table, 16, random)
      const results = [1, 2, 3, 4].map(i => table.addFoundNode(nodeAtDistance(table, 256, `51.77.0.${i}`, random)))
      assert.deepEqual(results, [AddResult.Replacement, AddResult.Replacement, AddResult.IpLimit, AddResult.IpLimit])
      assert.equal(table.buckets()[16]!.replacements.length, 2)
    })
  })

  describe('IP limits', () => {
    it('holds at most tableIpLimit nodes of one /24 in the whole table (geth TestTable_IPLimit)', () => {
      const { table, random } = testTable()
      for (let i = 0; i < 12; i++) {
        // spread over buckets so only the table limit applies
        const node = nodeAtDistance(table, 256 - (i % 6), `51.15.3.${i + 1}`, random)
        table.addFoundNode(node)
      }
      assert.equal(table.size, 10)
      checkInvariants(table)
    })

    it('holds at most bucketIpLimit nodes of one /24 in a bucket (geth TestTable_BucketIPLimit)', () => {
      const { table, random } = testTable()
      const results = [1, 2, 3].map(i => table.addFoundNode(nodeAtDistance(table, 256, `51.15.4.${i}`, random)))
      assert.deepEqual(results, [AddResult.Added, AddResult.Added, AddResult.IpLimit])
      assert.equal(table.size, 2)
      checkInvariants(table)
    })

    it('checks the table first and rolls back when the bucket refuses', () => {
      const { table, random } = testTable()
      for (let i = 1; i <= 3; i++) {
        table.addFoundNode(nodeAtDistance(table, 256, `51.15.5.${i}`, random))
      }
      // the refused third must not have taken a table slot: 8 more fit elsewhere
      for (let i = 0; i < 8; i++) {
        table.addFoundNode(nodeAtDistance(table, 255 - (i % 4), `51.15.5.${10 + i}`, random))
      }
      assert.equal(table.size, 10)
      assert.deepEqual(table.tableIpCounts(), [['ip4/33.f.5/24', 10]])
    })

    it('exempts loopback and LAN nodes by default', () => {
      const { table, random } = testTable()
      for (let i = 1; i <= 8; i++) {
        table.addFoundNode(nodeAtDistance(table, 256, `127.0.0.${i}`, random))
      }
      assert.equal(table.size, 8)
      assert.deepEqual(table.tableIpCounts(), [])
    })

    it('limits loopback and LAN nodes when allowLan is false', () => {
      const { table, random } = testTable({ allowLan: false })
      for (let i = 1; i <= 8; i++) {
        table.addFoundNode(nodeAtDistance(table, 256, `127.0.1.${i}`, random))
      }
      assert.equal(table.size, 2)
      checkInvariants(table)
    })

    it('groups IPv6 nodes by /48', () => {
      const { table, random } = testTable()
      const add = (ip: string): AddResult => table.addFoundNode({ id: nodeAtDistance(table, 256, '1.1.1.1', random).id, multiaddrs: [tcpAddr(ip)] })
      assert.equal(add('2a01:4f8:10::1'), AddResult.Added)
      assert.equal(add('2a01:4f8:10:ff::1'), AddResult.Added)
      assert.equal(add('2a01:4f8:10:abcd::1'), AddResult.IpLimit)
      assert.equal(add('2a01:4f8:11::1'), AddResult.Added)
    })

    it('counts DNS-only nodes by domain and exempts memory-transport nodes', () => {
      const { table, random } = testTable()
      const add = (addr: string): AddResult => table.addFoundNode({ id: nodeAtDistance(table, 256, '1.1.1.1', random).id, multiaddrs: [multiaddr(addr)] })
      assert.deepEqual(['a', 'b', 'c'].map(l => add(`/dns4/${l}.evil.example/tcp/1`)), [AddResult.Added, AddResult.Added, AddResult.IpLimit])
      for (let i = 0; i < 5; i++) {
        assert.equal(add(`/memory/m${i}`), AddResult.Added)
      }
    })

    it('releases a node\'s IP slots when it leaves', () => {
      const { table, random } = testTable()
      const a = nodeAtDistance(table, 256, '51.15.6.1', random)
      const b = nodeAtDistance(table, 256, '51.15.6.2', random)
      table.addFoundNode(a)
      table.addFoundNode(b)
      table.delete(a.id)
      assert.equal(table.addFoundNode(nodeAtDistance(table, 256, '51.15.6.3', random)), AddResult.Added)
      checkInvariants(table)
    })
  })

  describe('dropFailedNode', () => {
    it('drops a node whose bucket holds at least bucketSize / 4 entries', () => {
      const { table, random } = testTable()
      const nodes = fillBucket(table, 16, random, 4)
      assert.equal(table.dropFailedNode(nodes[0]!.id), true)
      assert.equal(table.size, 3)
    })

    it('keeps a node whose bucket holds fewer than bucketSize / 4 entries', () => {
      const { table, random } = testTable()
      const nodes = fillBucket(table, 16, random, 3)
      assert.equal(table.dropFailedNode(nodes[0]!.id), false)
      assert.equal(table.size, 3)
    })
  })

  describe('delete', () => {
    it('says whether the node was there', () => {
      const { table, random } = testTable()
      const [node] = fillBucket(table, 16, random, 1)
      assert.equal(table.delete(node!.id), true)
      assert.equal(table.delete(node!.id), false)
    })
  })

  describe('initDone', () => {
    it('is false until setInitDone', () => {
      const { table } = testTable()
      assert.equal(table.initDone, false)
      table.setInitDone()
      assert.equal(table.initDone, true)
    })
  })

  describe('closest', () => {
    it('ranks by distance alone unless asked to prefer live nodes', () => {
      const { table, random } = testTable()
      // bucket 15 holds log distance 255, closer to self than bucket 16's 256
      const [near] = fillBucket(table, 15, random, 1)
      const [far] = fillBucket(table, 16, random, 1)
      // only the far one passes a liveness check
      table.revalidated(table.getNode(far!.id)!, true)
      assert.deepEqual(ids(table.closest(table.selfKey, 1)), [near!.id.toString()])
      assert.deepEqual(ids(table.closest(table.selfKey, 2)), [near!.id.toString(), far!.id.toString()])
      assert.deepEqual(ids(table.closest(table.selfKey, 1, { preferLive: true })), [far!.id.toString()])
    })
  })

  describe('views', () => {
    it('counts entries per bucket, and no IP counts for a bucket it does not have', () => {
      const { table, random } = testTable()
      fillBucket(table, 16, random, 2)
      fillBucket(table, 3, random, 1)
      const fill = table.bucketFill()
      assert.equal(fill.length, 17)
      assert.equal(fill[16], 2)
      assert.equal(fill[3], 1)
      assert.equal(fill.reduce((a, b) => a + b), 3)
      assert.deepEqual(table.bucketIpCounts(99), [])
    })
  })

  describe('revalidated', () => {
    it('does nothing for a dead node whose bucket emptied meanwhile', () => {
      const { table, random } = testTable()
      const [node] = fillBucket(table, 16, random, 1)
      const checked = table.nodeToRevalidate()!.node
      table.delete(node!.id)
      assert.equal(table.revalidated(checked, false), RevalidationOutcome.Moved)
    })
  })

  describe('sameAddrs and sameNet', () => {
    const a = tcpAddr('51.15.1.1')
    const b = tcpAddr('51.15.1.2')
    const c = tcpAddr('51.15.1.3')
    const node = (addrs: typeof a[]): TableNode => ({ id: undefined as never, key: new Uint8Array(32), addrs, addedAt: 0, livenessChecks: 0 })

    it('calls addresses the same only when all are equal, in the same order', () => {
      assert.equal(sameAddrs(node([a, b]), node([a, b])), true)
      assert.equal(sameAddrs(node([a]), node([a, b])), false)
      assert.equal(sameAddrs(node([a, b]), node([a, c])), false)
      assert.equal(sameAddrs(node([a, b]), node([b, a])), false)
    })

    it('calls net addresses the same when they count as the same', () => {
      assert.equal(sameNet(netAddressOf([a])!, netAddressOf([a])!), true)
      assert.equal(sameNet(netAddressOf([a])!, netAddressOf([b])!), false)
    })
  })

  describe('hooks', () => {
    it('reports nodes added, updated and removed', () => {
      const events: string[] = []
      const { table, random } = testTable({
        onNodeAdded: (n: TableNode) => events.push(`added ${n.addrs[0]?.toString()}`),
        onNodeUpdated: (n: TableNode) => events.push(`updated ${n.addrs[0]?.toString()}`),
        onNodeRemoved: (n: TableNode, reason: RemoveReason) => events.push(`removed ${n.addrs[0]?.toString()} ${reason}`)
      })
      table.setInitDone()
      const node = nodeAtDistance(table, 256, '51.15.7.1', random)
      table.addFoundNode(node)
      table.addInboundNode({ id: node.id, multiaddrs: [tcpAddr('51.15.8.1')] })
      table.addInboundNode({ id: node.id, multiaddrs: [tcpAddr('51.15.8.1')] })
      table.delete(node.id)
      assert.deepEqual(events, [
        'added /ip4/51.15.7.1/tcp/4001',
        'updated /ip4/51.15.8.1/tcp/4001',
        `removed /ip4/51.15.8.1/tcp/4001 ${RemoveReason.Deleted}`
      ])
    })
  })

  describe('snapshots', () => {
    it('hands out copies that cannot change the table', () => {
      const { table, random } = testTable()
      fillBucket(table, 16, random, 2)
      const [first] = table.nodes()
      first!.addrs.length = 0
      first!.livenessChecks = 99
      table.buckets()[16]!.entries.pop()
      assert.equal(table.nodes()[0]!.addrs.length, 1)
      assert.equal(table.nodes()[0]!.livenessChecks, 0)
      assert.equal(table.buckets()[16]!.entries.length, 2)
    })

    it('records when a node entered the table from the injected clock', () => {
      const { table, clock, random } = testTable()
      clock.set(5000)
      const [node] = fillBucket(table, 16, random, 1)
      assert.equal(table.getNode(node!.id)?.addedAt, 5000)
    })
  })
})
