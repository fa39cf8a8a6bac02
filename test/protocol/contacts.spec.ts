import assert from 'node:assert/strict'
import { CONTACT_ADDRS_TTL, ContactAddresses } from '../../src/protocol/contacts.js'
import { connect, TestNodes, waitFor } from '../utils/libp2p.js'
import type { Connection } from '@libp2p/interface'

describe('ContactAddresses', function () {
  this.timeout(30_000)
  const nodes = new TestNodes()
  afterEach(async () => { await nodes.stop() })

  it('reuses a requester\'s addresses for CONTACT_ADDRS_TTL, then forgets them, held or not', async () => {
    const [server, first, second] = await nodes.createMany(3)
    const [toFirst, toSecond] = await Promise.all([connect(first!, server!), connect(second!, server!)])
    const inbound = (peer: typeof first): Connection => {
      const connection = server!.getConnections(peer!.peerId)[0]
      assert.ok(connection != null)
      return connection
    }
    await waitFor(async () => (await server!.peerStore.get(first!.peerId).catch(() => undefined))?.addresses.length === 1 &&
      (await server!.peerStore.get(second!.peerId).catch(() => undefined))?.addresses.length === 1, 'identify to fill the peer store', 10_000)
    let now = 1_000_000
    const contacts = new ContactAddresses({ peerStore: server!.peerStore, identifyTimeout: 1000, now: () => now })
    const cached = (): number => (contacts as unknown as { cache: Map<string, unknown> }).cache.size
    const signal = AbortSignal.timeout(10_000)

    const addrs = await contacts.of(inbound(first), signal)
    assert.deepEqual(addrs.map(String), first!.getMultiaddrs().map(ma => ma.decapsulateCode(421).toString()))
    assert.equal(cached(), 1)
    now += CONTACT_ADDRS_TTL - 1
    assert.equal(await contacts.of(inbound(first), signal), addrs, 'reused within the TTL')

    // past the TTL, the next request forgets the expired answer, not only when it is asked again
    now += 2
    await contacts.of(inbound(second), signal)
    assert.equal(cached(), 1, 'only the second requester\'s answer is kept')
    assert.notEqual(await contacts.of(inbound(first), signal), addrs, 'read afresh')
    assert.equal(cached(), 2)
    await Promise.all([toFirst.close(), toSecond.close()])
  })
})
