import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { distanceCompare, keyAtDistance, keyOf, keysEqual, logDistance, xor } from '../../src/table/key.js'
import { seededRandom } from '../../src/table/random.js'
import { fakePeerId } from '../utils/peers.js'

function toBigInt (bytes: Uint8Array): bigint {
  return BigInt('0x' + (Buffer.from(bytes).toString('hex') || '0'))
}

describe('key', () => {
  describe('keyOf', () => {
    it('is the sha256 of the peer id multihash, as in kad-dht', () => {
      const peerId = fakePeerId(seededRandom(1))
      const expected = createHash('sha256').update(peerId.toMultihash().bytes).digest()
      assert.deepEqual(Buffer.from(keyOf(peerId)), expected)
    })

    it('hashes a PeerId once: the second call returns the same key object', () => {
      const peerId = fakePeerId(seededRandom(2))
      assert.equal(keyOf(peerId), keyOf(peerId))
    })
  })

  describe('keysEqual', () => {
    it('is true for equal bytes only, and false for keys of different lengths', () => {
      assert.equal(keysEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3)), true)
      assert.equal(keysEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4)), false)
      assert.equal(keysEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3)), false)
    })
  })

  describe('logDistance', () => {
    it('is 0 between equal keys', () => {
      const key = seededRandom(2).bytes(32)
      assert.equal(logDistance(key, key.slice()), 0)
    })

    it('is 1 when only the lowest bit differs and 256 when the highest does', () => {
      const a = new Uint8Array(32)
      const b = new Uint8Array(32)
      b[31] = 1
      assert.equal(logDistance(a, b), 1)
      b[0] = 0x80
      assert.equal(logDistance(a, b), 256)
    })

    it('equals the bit length of the XOR for random keys', () => {
      const random = seededRandom(3)
      for (let i = 0; i < 2000; i++) {
        const a = random.bytes(32)
        const b = a.slice()
        // share a random number of leading bytes so small distances are covered too
        const from = random.int(32)
        b.set(random.bytes(32 - from), from)
        const bitLength = toBigInt(xor(a, b)).toString(2).replace(/^0$/, '').length
        assert.equal(logDistance(a, b), bitLength)
      }
    })
  })

  describe('distanceCompare', () => {
    it('orders keys as their XOR distances compare as integers', () => {
      const random = seededRandom(4)
      for (let i = 0; i < 2000; i++) {
        const target = random.bytes(32)
        const a = random.bytes(32)
        const b = i % 10 === 0 ? a.slice() : random.bytes(32)
        const da = toBigInt(xor(a, target))
        const db = toBigInt(xor(b, target))
        const expected = da < db ? -1 : da > db ? 1 : 0
        assert.equal(Math.sign(distanceCompare(target, a, b)), expected)
      }
    })
  })

  describe('keyAtDistance', () => {
    it('returns a key at exactly the requested log distance for every distance', () => {
      const random = seededRandom(5)
      const base = random.bytes(32)
      for (let d = 0; d <= 256; d++) {
        assert.equal(logDistance(base, keyAtDistance(base, d, random.bytes(32))), d)
      }
    })

    it('returns a copy of the base at distance 0', () => {
      const base = seededRandom(6).bytes(32)
      const key = keyAtDistance(base, 0, new Uint8Array(32).fill(0xff))
      assert.deepEqual(key, base)
      assert.notEqual(key, base)
    })

    it('takes every bit below the highest differing one from the random bytes', () => {
      const base = new Uint8Array(32)
      const random = new Uint8Array(32).fill(0xab)
      // distance 5: bit 4 of the last byte flips, bits 0-3 are random
      assert.deepEqual(keyAtDistance(base, 5, random), Uint8Array.of(...new Array(31).fill(0), 0x10 | (0xab & 0x0f)))
      // distance 193: bit 0 of byte 7 flips, bytes 8-31 are random
      const key = keyAtDistance(base, 193, random)
      assert.deepEqual(key.subarray(0, 8), Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0x01))
      assert.deepEqual(key.subarray(8), random.subarray(8))
    })
  })
})
