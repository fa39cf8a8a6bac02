import assert from 'node:assert/strict'
import { findClosest, NodesByDistance } from '../../src/table/nodes-by-distance.js'

/** A key of 32 bytes: `head` at its start (the 32-bit prefix) and `tail` as its last byte. */
function key (head: number[], tail = 0): { key: Uint8Array } {
  const bytes = new Uint8Array(32)
  bytes.set(head)
  bytes[31] = tail
  return { key: bytes }
}

const target = new Uint8Array(32)

describe('NodesByDistance', () => {
  it('keeps its entries closest first and says whether it kept each one', () => {
    const list = new NodesByDistance(target, 3)
    const far = key([0, 0, 9])
    const near = key([0, 0, 1])
    assert.equal(list.push(far), true)
    assert.equal(list.push(near), true)
    assert.deepEqual(list.entries, [near, far])
  })

  it('refuses a key it holds already', () => {
    const list = new NodesByDistance(target, 3)
    list.push(key([0, 0, 1]))
    assert.equal(list.push(key([0, 0, 1])), false)
    assert.equal(list.length, 1)
  })

  it('orders keys that share their first 32 bits by the rest', () => {
    const list = new NodesByDistance(target, 2)
    const closest = key([0, 0, 0, 0], 1)
    const farther = key([0, 0, 0, 1], 0x10)
    const nearer = key([0, 0, 0, 1], 0x01)
    list.push(closest)
    list.push(farther)
    assert.equal(list.push(nearer), true, 'closer than the last entry, though its prefix is the same')
    assert.deepEqual(list.entries, [closest, nearer])
    assert.equal(list.push(key([0, 0, 0, 1], 0x20)), false, 'farther than every entry of a full list')
    assert.equal(list.push(key([0, 0, 0, 2])), false)
    assert.deepEqual(list.entries, [closest, nearer])
  })

  it('removes an entry by position and finds entries by key', () => {
    const list = new NodesByDistance(target, 3)
    const a = key([0, 1])
    const b = key([0, 2])
    list.push(a)
    list.push(b)
    assert.equal(list.has(b.key), true)
    list.remove(1)
    assert.equal(list.has(b.key), false)
    assert.equal(list.has(a.key), true)
    assert.equal(list.push(key([0, 3])), true, 'the removed place is free again')
    assert.equal(list.length, 2)
  })
})

describe('findClosest', () => {
  const live = (head: number[]): { key: Uint8Array, livenessChecks: number } => ({ ...key(head), livenessChecks: 1 })
  const fresh = (head: number[]): { key: Uint8Array, livenessChecks: number } => ({ ...key(head), livenessChecks: 0 })

  it('takes live nodes first with preferLive, then fills up with the closest of the rest', () => {
    const a = fresh([0, 1])
    const b = live([0, 2])
    const c = fresh([0, 3])
    assert.deepEqual(findClosest([a, b, c], target, 2, true), [a, b], 'the live node and the closest other')
    assert.deepEqual(findClosest([a, b, c], target, 1, true), [b])
    assert.deepEqual(findClosest([a, b, c], target, 1, false), [a])
  })
})
