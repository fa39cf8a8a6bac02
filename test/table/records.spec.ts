import assert from 'node:assert/strict'
import { AddResult } from '../../src/table/types.js'
import { tcpAddr } from '../utils/peers.js'
import { checkInvariants, fillBucket, testTable } from '../utils/table.js'

describe('Table', () => {
  describe('updateFromRecord', () => {
    it('re-addresses an entry from a newer verified record, in place, and reports it', () => {
      const updated: string[] = []
      const { table, random } = testTable({ onNodeUpdated: node => { updated.push(node.addrs.map(String).join()) } })
      const nodes = fillBucket(table, 16, random, 3)
      const moved = nodes[1]!
      assert.equal(table.updateFromRecord({ id: moved.id, multiaddrs: [tcpAddr('60.1.1.1')], recordSeq: 5n }), AddResult.Readdressed)
      const entries = table.buckets()[16]!.entries
      assert.deepEqual(entries.map(e => e.id.toString()), nodes.map(n => n.id.toString()), 'nothing moved')
      assert.deepEqual(entries[1]!.addrs.map(String), ['/ip4/60.1.1.1/tcp/4001'])
      assert.equal(entries[1]!.recordSeq, 5n)
      assert.deepEqual(updated, ['/ip4/60.1.1.1/tcp/4001'])
      checkInvariants(table)
    })

    it('never takes an older or equal record, nor hearsay without one', () => {
      const { table, random } = testTable()
      const [node] = fillBucket(table, 16, random, 1)
      assert.equal(table.updateFromRecord({ id: node!.id, multiaddrs: [tcpAddr('60.1.1.1')], recordSeq: 5n }), AddResult.Readdressed)
      assert.equal(table.updateFromRecord({ id: node!.id, multiaddrs: [tcpAddr('60.2.2.2')], recordSeq: 4n }), AddResult.Present)
      assert.equal(table.updateFromRecord({ id: node!.id, multiaddrs: [tcpAddr('60.2.2.2')], recordSeq: 5n }), AddResult.Present)
      assert.equal(table.addFoundNode({ id: node!.id, multiaddrs: [tcpAddr('60.2.2.2')] }), AddResult.Present)
      // addFoundNode takes the same path for a node with a verified record
      assert.equal(table.addFoundNode({ id: node!.id, multiaddrs: [tcpAddr('60.3.3.3')], recordSeq: 6n }), AddResult.Readdressed)
      assert.deepEqual(table.getNode(node!.id)?.addrs.map(String), ['/ip4/60.3.3.3/tcp/4001'])
      assert.equal(table.getNode(node!.id)?.recordSeq, 6n)
    })

    it('keeps the old addresses when the IP limits refuse the new subnet, and counts nothing twice', () => {
      const { table, random } = testTable({ bucketIpLimit: 2 })
      const nodes = fillBucket(table, 16, random, 3)
      // two entries already fill the bucket's share of 60.9.9.0/24
      table.updateFromRecord({ id: nodes[0]!.id, multiaddrs: [tcpAddr('60.9.9.1')], recordSeq: 1n })
      table.updateFromRecord({ id: nodes[1]!.id, multiaddrs: [tcpAddr('60.9.9.2')], recordSeq: 1n })
      const before = nodes[2]!.multiaddrs.map(String)
      assert.equal(table.updateFromRecord({ id: nodes[2]!.id, multiaddrs: [tcpAddr('60.9.9.3')], recordSeq: 1n }), AddResult.IpLimit)
      assert.deepEqual(table.getNode(nodes[2]!.id)?.addrs.map(String), before)
      assert.equal(table.getNode(nodes[2]!.id)?.recordSeq, undefined)
      checkInvariants(table)
      assert.deepEqual(table.bucketIpCounts(16).find(([group]) => group.startsWith('ip4/3c.9.9'))?.[1], 2)
    })

    it('takes only the seq of a newer record that names the same addresses, and reports nothing', () => {
      const updated: string[] = []
      const { table, random } = testTable({ onNodeUpdated: node => { updated.push(node.id.toString()) } })
      const [node] = fillBucket(table, 16, random, 1)
      assert.equal(table.updateFromRecord({ id: node!.id, multiaddrs: node!.multiaddrs, recordSeq: 3n }), AddResult.Present)
      assert.equal(table.getNode(node!.id)?.recordSeq, 3n)
      assert.deepEqual(updated, [])
    })

    it('adds a node it does not hold as a found node, keeping its seq', () => {
      const { table, random } = testTable()
      const [node] = fillBucket(table, 16, random, 1)
      table.delete(node!.id)
      assert.equal(table.updateFromRecord({ id: node!.id, multiaddrs: [tcpAddr('60.1.1.1')], recordSeq: 2n }), AddResult.Added)
      assert.equal(table.getNode(node!.id)?.recordSeq, 2n)
    })
  })
})
