import assert from 'node:assert/strict'
import { PROTOCOL } from '../../src/constants.js'
import { DEFAULT_GLOBAL, DEFAULT_PER_PEER, RateLimiter } from '../../src/protocol/rate-limiter.js'
import { peerInfoOf } from '../utils/libp2p.js'
import { fakeClock } from '../utils/table.js'
import { protocolService, useNodes } from './utils.js'
import type { ProtocolService } from './utils.js'

interface Services extends Record<string, unknown> { discovery: ProtocolService }

describe('RateLimiter', () => {
  it('allows a burst, then one request per refill interval', () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ perPeer: { burst: 3, perSecond: 2 }, now: clock })
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('a')), ['ok', 'ok', 'ok', 'peer'])
    clock.advance(499)
    assert.equal(limiter.take('a'), 'peer')
    clock.advance(1)
    assert.equal(limiter.take('a'), 'ok')
    assert.equal(limiter.take('a'), 'peer')
  })

  it('never refills beyond the burst', () => {
    const clock = fakeClock()
    const limiter = new RateLimiter({ perPeer: { burst: 2, perSecond: 100 }, now: clock })
    clock.advance(60_000)
    assert.deepEqual([1, 2, 3].map(() => limiter.take('a')), ['ok', 'ok', 'peer'])
  })

  it('keeps one budget per peer', () => {
    const limiter = new RateLimiter({ perPeer: { burst: 1, perSecond: 0 }, now: fakeClock() })
    assert.equal(limiter.take('a'), 'ok')
    assert.equal(limiter.take('a'), 'peer')
    assert.equal(limiter.take('b'), 'ok')
  })

  it('refuses everyone once the global budget is spent, without charging refused peers', () => {
    const limiter = new RateLimiter({ perPeer: { burst: 2, perSecond: 0 }, global: { burst: 3, perSecond: 0 }, now: fakeClock() })
    assert.deepEqual(['a', 'a', 'a', 'b', 'c'].map(p => limiter.take(p)), ['ok', 'ok', 'peer', 'ok', 'global'])
  })

  it('holds at most maxPeers buckets, dropping the least recently seen', () => {
    const limiter = new RateLimiter({ perPeer: { burst: 1, perSecond: 0 }, maxPeers: 2, now: fakeClock() })
    limiter.take('a')
    limiter.take('b')
    assert.equal(limiter.take('a'), 'peer', 'a is seen again, so b is now the oldest')
    limiter.take('c')
    assert.equal(limiter.size, 2)
    assert.equal(limiter.take('a'), 'peer', 'a was kept')
    assert.equal(limiter.take('b'), 'ok', 'b was dropped and starts afresh')
  })

  it('refuses a bucket with burst below 1 or a negative refill, naming the values', () => {
    for (const bad of [{ burst: 0, perSecond: 1 }, { burst: 1, perSecond: -1 }, { burst: Number.NaN, perSecond: 1 }, { burst: 1, perSecond: Number.NaN }]) {
      const message = new RegExp(`burst ≥ 1 and perSecond ≥ 0, got ${bad.burst} / ${bad.perSecond}`)
      assert.throws(() => new RateLimiter({ perPeer: bad }), { name: 'InvalidParametersError', message })
      assert.throws(() => new RateLimiter({ global: bad }), { name: 'InvalidParametersError', message })
    }
    assert.doesNotThrow(() => new RateLimiter({ perPeer: { burst: 1, perSecond: 0 }, global: { burst: 1, perSecond: 0 } }))
  })

  it('has documented defaults', () => {
    assert.deepEqual(DEFAULT_PER_PEER, { burst: 64, perSecond: 16 })
    assert.deepEqual(DEFAULT_GLOBAL, { burst: 2048, perSecond: 1024 })
  })
})

describe('ProtocolServer rate limiting', () => {
  const nodes = useNodes()

  it('refuses a flood of 1 000 requests from one peer past its budget while another peer is answered', async () => {
    // a frozen clock: the budget does not refill while the flood runs, however slow the machine
    const clock = fakeClock()
    const server = await nodes.create<Services>({ services: { discovery: protocolService({ server: { rateLimit: { now: clock } } }) } })
    const flooder = await nodes.create<Services>({ services: { discovery: protocolService() } })
    const bystander = await nodes.create<Services>({ services: { discovery: protocolService() } })
    const client = flooder.services.discovery.client
    let answered = 0
    let refused = 0
    for (let i = 0; i < 1000; i += 10) {
      // ten at a time: within libp2p's per-connection stream limit, so our limiter decides
      const results = await Promise.allSettled(Array.from({ length: 10 }, async () => client.ping(peerInfoOf(server))))
      for (const result of results) {
        if (result.status === 'fulfilled') {
          answered++
        } else {
          assert.equal(result.reason.name, 'StreamResetError')
          refused++
        }
      }
    }
    assert.equal(answered, DEFAULT_PER_PEER.burst)
    assert.equal(refused, 1000 - DEFAULT_PER_PEER.burst)
    assert.equal(server.services.discovery.server.stats['rateLimited.peer'], refused)
    await bystander.services.discovery.client.ping(peerInfoOf(server))
    assert.equal(server.services.discovery.server.stats['received.PING'], DEFAULT_PER_PEER.burst + 1)
    assert.equal(server.getProtocols().includes(PROTOCOL), true)
  })
})
