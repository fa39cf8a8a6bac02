import assert from 'node:assert/strict'
import { cryptoRandom, sample, seededRandom } from '../../src/table/random.js'

describe('random', () => {
  describe('cryptoRandom', () => {
    it('draws integers in [0, n), every value of a small range', () => {
      const random = cryptoRandom()
      const seen = new Set<number>()
      for (let i = 0; i < 300; i++) {
        const value = random.int(3)
        assert.ok(Number.isInteger(value) && value >= 0 && value < 3, `${value}`)
        seen.add(value)
      }
      assert.deepEqual([...seen].sort(), [0, 1, 2])
      assert.equal(random.int(1), 0)
    })

    it('draws from a wide range without rejecting most draws', () => {
      const random = cryptoRandom()
      for (let i = 0; i < 20; i++) {
        const value = random.int(0x10000)
        assert.ok(Number.isInteger(value) && value >= 0 && value < 0x10000, `${value}`)
      }
    })

    it('draws n random bytes', () => {
      const bytes = cryptoRandom().bytes(32)
      assert.equal(bytes.length, 32)
      assert.ok(bytes.some(b => b !== 0))
    })
  })

  describe('seededRandom', () => {
    it('is mulberry32: seed 1 gives its published first outputs', () => {
      const random = seededRandom(1)
      assert.deepEqual([random.int(2 ** 32), random.int(2 ** 32), random.int(2 ** 32)], [2693262067, 11749833, 2265367787])
    })
  })

  describe('sample', () => {
    it('picks count distinct items, or all of them when there are fewer', () => {
      const items = [1, 2, 3, 4, 5]
      const picked = sample([...items], 3, seededRandom(2))
      assert.equal(new Set(picked).size, 3)
      assert.ok(picked.every(i => items.includes(i)))
      assert.deepEqual(sample([...items], 9, seededRandom(2)).sort(), items)
      assert.deepEqual(sample([...items], -1, seededRandom(2)), [])
    })
  })
})
