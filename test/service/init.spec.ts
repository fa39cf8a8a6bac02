import assert from 'node:assert/strict'
import { multiaddr } from '@multiformats/multiaddr'
import * as c from '../../src/constants.js'
import { parseBootnodes, resolveInit } from '../../src/service/init.js'

const PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA'

describe('init', () => {
  it('fills in geth\'s defaults', () => {
    const init = resolveInit()
    assert.equal(init.bucketSize, c.BUCKET_SIZE)
    assert.equal(init.nBuckets, 17)
    assert.equal(init.maxReplacements, 10)
    assert.equal(init.alpha, 3)
    assert.equal(init.bucketIpLimit, 2)
    assert.equal(init.tableIpLimit, 10)
    assert.equal(init.maxFindnodeFailures, 5)
    assert.equal(init.refreshInterval, 30 * 60 * 1000)
    assert.equal(init.revalidateInterval, 10_000)
    assert.equal(init.provenRevalidateInterval, 60_000)
    assert.equal(init.copyNodesInterval, 30_000)
    assert.equal(init.seedMinTableTime, 5 * 60 * 1000)
    assert.equal(init.seedCount, 30)
    assert.equal(init.seedMaxAge, 5 * 24 * 3600 * 1000)
    assert.equal(init.nodeExpiration, 24 * 3600 * 1000)
    assert.equal(init.requestTimeout, 5000)
    assert.equal(init.lookupTimeout, 20_000)
    assert.equal(init.protocol, '/kad-discovery/1.0.0')
    assert.equal(init.allowLan, true)
    assert.deepEqual(init.autoDial, { enabled: true, minConnections: 16, maxParallelDials: 4, dialHistoryExpiration: 35_000 })
  })

  it('derives provenRevalidateInterval from a revalidateInterval set alone, and keeps one set explicitly', () => {
    assert.equal(resolveInit({ revalidateInterval: 500 }).provenRevalidateInterval, 3000)
    assert.equal(resolveInit({ revalidateInterval: 2 ** 30 }).provenRevalidateInterval, 2 ** 31 - 1, 'within a timer\'s range')
    assert.equal(resolveInit({ revalidateInterval: 500, provenRevalidateInterval: 700 }).provenRevalidateInterval, 700)
    assert.throws(() => resolveInit({ provenRevalidateInterval: 0 }), { name: 'InvalidParametersError' })
  })

  it('keeps a real 0 where 0 is allowed (no `||` defaults)', () => {
    assert.equal(resolveInit({ maxReplacements: 0 }).maxReplacements, 0)
    assert.equal(resolveInit({ seedCount: 0 }).seedCount, 0)
    assert.equal(resolveInit({ autoDial: { minConnections: 0 } }).autoDial.minConnections, 0)
  })

  const bad: Array<[string, object]> = [
    ['a negative bucket size', { bucketSize: -1 }],
    ['a zero bucket size', { bucketSize: 0 }],
    ['a fractional alpha', { alpha: 1.5 }],
    ['a string interval', { refreshInterval: '10' }],
    ['NaN', { revalidateInterval: Number.NaN }],
    ['Infinity', { requestTimeout: Number.POSITIVE_INFINITY }],
    ['a zero lookup budget', { lookupTimeout: 0 }],
    ['an IPv4 prefix over 32', { bucketSubnet: 33 }],
    ['too many buckets', { nBuckets: 257 }],
    ['a protocol without a slash', { protocol: 'kad' }],
    ['a non-boolean allowLan', { allowLan: 'yes' }],
    ['a non-boolean autoDial.enabled', { autoDial: { enabled: 1 } }],
    ['zero parallel dials', { autoDial: { maxParallelDials: 0 } }],
    ['bootnodes that are not an array', { bootnodes: '/ip4/1.2.3.4/tcp/1' }],
    ['a bootnode that is not a multiaddr', { bootnodes: ['not a multiaddr'] }],
    ['a bootnode without /p2p/', { bootnodes: ['/ip4/1.2.3.4/tcp/1'] }],
    ['a bootnode with a bad peer id', { bootnodes: ['/ip4/1.2.3.4/tcp/1/p2p/QmNotAPeer'] }],
    ['a datastore that is not one', { datastore: {} }]
  ]
  for (const [what, init] of bad) {
    it(`throws InvalidParametersError for ${what}`, () => {
      assert.throws(() => resolveInit(init as any), { name: 'InvalidParametersError' })
    })
  }

  describe('parseBootnodes', () => {
    it('takes strings and Multiaddrs, merges addresses of one peer, and drops their /p2p/ suffix', () => {
      const peers = parseBootnodes([`/ip4/1.2.3.4/tcp/1/p2p/${PEER}`, multiaddr(`/ip4/5.6.7.8/tcp/2/p2p/${PEER}`)])
      assert.equal(peers.length, 1)
      assert.equal(peers[0]!.id.toString(), PEER)
      assert.deepEqual(peers[0]!.multiaddrs.map(m => m.toString()), ['/ip4/1.2.3.4/tcp/1', '/ip4/5.6.7.8/tcp/2'])
    })
  })
})
