import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { distanceCompare, keyAtDistance, keyOf, logDistance, xor } from '../../src/table/key.js'
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
  })
})
