import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import { NodeRecord } from '../../src/store/pb/record.js'
import { CorruptReason, MAX_RECORD_ADDRS, PendingTimes, Reservoir, decodeFields, encodeFields, keyName, nodeKey, toPeerInfo } from '../../src/store/records.js'
import { seededRandom } from '../../src/table/random.js'
import { fakePeerId, intIP, tcpAddr } from '../utils/peers.js'
import type { NodeFields } from '../../src/store/records.js'
import type { RandomSource } from '../../src/table/types.js'

const T = 1_700_000_000_000

function fields (addrs = [tcpAddr('51.15.0.1').bytes]): NodeFields {
  return { addrs, lastPingSent: T - 2, lastPongReceived: T - 1, findFails: 3, firstSeen: T - 100 }
}

describe('node records', () => {
  describe('nodeKey', () => {
    it('puts a node under /kad-discovery/nodes/<peerId> and reads the peer id back', () => {
      const id = fakePeerId(seededRandom(1))
      const key = nodeKey(id)
      assert.equal(key.toString(), `/kad-discovery/nodes/${id.toString()}`)
      assert.equal(keyName(key), id.toString())
    })
  })

  describe('encodeFields / decodeFields', () => {
    it('round-trips every field', () => {
      assert.deepEqual(decodeFields(encodeFields(fields())), fields())
    })

    it('floors times to whole milliseconds', () => {
      const decoded = decodeFields(encodeFields({ ...fields(), lastPongReceived: T + 0.7 }))
      assert.equal(typeof decoded === 'string' ? decoded : decoded.lastPongReceived, T)
    })

    it(`keeps at most ${MAX_RECORD_ADDRS} addresses`, () => {
      const addrs = Array.from({ length: MAX_RECORD_ADDRS + 4 }, (_, i) => tcpAddr(intIP(i)).bytes)
      const decoded = decodeFields(encodeFields(fields(addrs)))
      assert.equal(typeof decoded === 'string' ? decoded : decoded.addrs.length, MAX_RECORD_ADDRS)
    })

    it('finds a value cut short at any byte, at a field boundary or inside a field', () => {
      const value = encodeFields(fields([tcpAddr('51.15.0.1').bytes, tcpAddr('2001:db8::1').bytes]))
      for (let length = 0; length < value.length; length++) {
        const decoded = decodeFields(value.subarray(0, length))
        assert.ok(decoded === CorruptReason.Undecodable || decoded === CorruptReason.Malformed, `cut at ${length}: ${JSON.stringify(decoded)}`)
      }
    })

    it('finds garbage, a record without an address and a time past 2^53 ms', () => {
      assert.equal(decodeFields(Uint8Array.of(0xff, 0xff, 0xff)), CorruptReason.Undecodable)
      assert.equal(decodeFields(encodeFields(fields([]))), CorruptReason.Malformed)
      const huge = NodeRecord.encode({ ...NodeRecord.decode(encodeFields(fields())), lastPongReceived: 2n ** 60n })
      assert.equal(decodeFields(huge), CorruptReason.Malformed)
    })

    it('takes every time up to 2^53 - 1 ms, firstSeen included, and no time past it', () => {
      const max = BigInt(Number.MAX_SAFE_INTEGER)
      const sound = NodeRecord.decode(encodeFields(fields()))
      for (const field of ['lastPingSent', 'lastPongReceived', 'firstSeen'] as const) {
        assert.equal(typeof decodeFields(NodeRecord.encode({ ...sound, [field]: max })), 'object', `${field} = 2^53 - 1`)
        assert.equal(decodeFields(NodeRecord.encode({ ...sound, [field]: max + 1n })), CorruptReason.Malformed, `${field} = 2^53`)
      }
    })

    it(`refuses a record of more than ${MAX_RECORD_ADDRS} addresses`, () => {
      const addrs = Array.from({ length: MAX_RECORD_ADDRS + 1 }, () => tcpAddr('51.15.0.1').bytes)
      const value = NodeRecord.encode({ addrs, lastPingSent: 0n, lastPongReceived: 0n, findFails: 0, firstSeen: 1n })
      assert.equal(decodeFields(value), CorruptReason.Undecodable)
    })
  })

  describe('toPeerInfo', () => {
    it('parses the peer id and the multiaddrs', () => {
      const id = fakePeerId(seededRandom(1))
      const info = toPeerInfo(id.toString(), fields())
      assert.ok(typeof info !== 'string')
      assert.ok(info.id.equals(id))
      assert.deepEqual(info.multiaddrs.map(String), ['/ip4/51.15.0.1/tcp/4001'])
    })

    it('refuses a key that is not a peer id, or not one in its canonical form', () => {
      const id = fakePeerId(seededRandom(1))
      assert.equal(toPeerInfo('not-a-peer-id', fields()), CorruptReason.InvalidPeerId)
      assert.equal(toPeerInfo(id.toString().slice(0, -1), fields()), CorruptReason.InvalidPeerId)
      assert.equal(toPeerInfo(id.toCID().toString(), fields()), CorruptReason.InvalidPeerId)
    })

    it('refuses bytes that are not a multiaddr', () => {
      const id = fakePeerId(seededRandom(1))
      assert.equal(toPeerInfo(id.toString(), fields([multiaddr('/ip4/1.2.3.4').bytes, Uint8Array.of(0xff, 0xff, 0x7f)])), CorruptReason.InvalidMultiaddr)
    })
  })

  describe('PendingTimes', () => {
    it('remembers at most max nodes and forgets the one updated longest ago', () => {
      const pending = new PendingTimes(2)
      assert.equal(pending.update('a', t => { t.findFails = 1 }), 0)
      assert.equal(pending.update('b', t => { t.findFails = 2 }), 0)
      assert.equal(pending.update('a', t => { t.lastPongReceived = 5 }), 0)
      assert.equal(pending.update('c', t => { t.findFails = 3 }), 1)
      assert.equal(pending.size, 2)
      assert.equal(pending.get('b'), undefined)
      assert.deepEqual(pending.get('a'), { lastPingSent: 0, lastPongReceived: 5, findFails: 1 })
    })

    it('remembers nothing when max is 0', () => {
      const pending = new PendingTimes(0)
      assert.equal(pending.update('a', t => { t.findFails = 1 }), 1)
      assert.equal(pending.size, 0)
    })
  })

  describe('Reservoir', () => {
    function draw (items: number, size: number, random: RandomSource): number[] {
      const reservoir = new Reservoir<number>(size, random)
      for (let i = 0; i < items; i++) {
        if (reservoir.wants()) {
          reservoir.keep(i)
        } else {
          reservoir.pass()
        }
      }
      return reservoir.sample()
    }

    it('keeps every item, shuffled, when no more than size are offered', () => {
      const picked = draw(5, 8, seededRandom(1))
      assert.deepEqual([...picked].sort(), [0, 1, 2, 3, 4])
    })

    it('keeps nothing when size is 0', () => {
      assert.deepEqual(draw(10, 0, seededRandom(1)), [])
    })

    it('picks each of 20 items with probability size / 20', () => {
      const random = seededRandom(5)
      const counts = new Array<number>(20).fill(0)
      const trials = 4000
      for (let t = 0; t < trials; t++) {
        const picked = draw(20, 5, random)
        assert.equal(new Set(picked).size, 5)
        picked.forEach(i => { counts[i] = (counts[i] ?? 0) + 1 })
      }
      // expected 1000 each, standard deviation ≈ 27: ± 150 is over five of them
      for (const [i, count] of counts.entries()) {
        assert.ok(Math.abs(count - 1000) < 150, `item ${i} picked ${count} times`)
      }
    })

    it('draws far fewer random numbers than it is offered items', () => {
      const base = seededRandom(1)
      let draws = 0
      const counting: RandomSource = { int: n => { draws++; return base.int(n) }, bytes: n => base.bytes(n) }
      draw(10_000, 30, counting)
      // Li's bound: ≈ 30 × (1 + ln(10 000 / 30)) ≈ 200 replacements, 3 draws each, plus the final shuffle
      assert.ok(draws < 1000, `${draws} draws`)
    })

    it('takes the next usable item in place of one the caller could not use', () => {
      const reservoir = new Reservoir<string>(1, seededRandom(1))
      assert.equal(reservoir.wants(), true)
      // the caller found the wanted item unusable and offered nothing: still wanted
      assert.equal(reservoir.wants(), true)
      reservoir.keep('usable')
      assert.deepEqual(reservoir.sample(), ['usable'])
    })
  })
})
