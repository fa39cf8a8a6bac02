import assert from 'node:assert/strict'
import { parseIP } from '@chainsafe/is-ip/parse'
import { multiaddr } from '@multiformats/multiaddr'
import { checkRelayIP, ipOf, isSpecialNetwork, relayableAddrs } from '../../src/protocol/relay.js'

function ip (text: string): Uint8Array {
  const bytes = parseIP(text)
  assert(bytes != null, text)
  return bytes.length === 16 && text.startsWith('::ffff:') ? bytes.slice(12) : bytes
}

describe('relay rules', () => {
  describe('checkRelayIP', () => {
    // after geth's TestCheckRelayIP
    const cases: Array<[string, string, string | undefined]> = [
      ['127.0.0.1', '0.0.0.0', 'unspecified'],
      ['192.168.0.1', '0.0.0.0', 'unspecified'],
      ['23.55.1.242', '0.0.0.0', 'unspecified'],
      ['23.55.1.242', '::', 'unspecified'],
      ['127.0.0.1', '255.255.255.255', 'special'],
      ['192.168.0.1', '255.255.255.255', 'special'],
      ['23.55.1.242', '255.255.255.255', 'special'],
      ['23.55.1.242', '224.0.0.1', 'special'],
      ['23.55.1.242', '203.0.113.5', 'special'],
      ['23.55.1.242', '2001:db8::1', 'special'],
      ['23.55.1.242', 'ff02::1', 'special'],
      ['192.168.0.1', '127.0.2.19', 'loopback'],
      ['23.55.1.242', '127.0.2.19', 'loopback'],
      ['23.55.1.242', '::1', 'loopback'],
      ['23.55.1.242', '192.168.0.1', 'lan'],
      ['23.55.1.242', '10.0.0.1', 'lan'],
      ['23.55.1.242', 'fe80::1', 'lan'],
      ['127.0.0.1', '127.0.2.19', undefined],
      ['127.0.0.1', '192.168.0.1', undefined],
      ['127.0.0.1', '23.55.1.242', undefined],
      ['192.168.0.1', '192.168.0.1', undefined],
      ['192.168.0.1', '10.0.3.1', undefined],
      ['192.168.0.1', '23.55.1.242', undefined],
      ['23.55.1.242', '23.55.1.242', undefined],
      ['23.55.1.242', '2a01:4f8::1', undefined]
    ]
    for (const [sender, addr, expected] of cases) {
      it(`says ${expected ?? 'yes'} to ${addr} from ${sender}`, () => {
        assert.equal(checkRelayIP(ip(sender), ip(addr)), expected)
      })
    }

    it('treats a sender without an IP as a public host', () => {
      assert.equal(checkRelayIP(undefined, ip('127.0.0.1')), 'loopback')
      assert.equal(checkRelayIP(undefined, ip('10.0.0.1')), 'lan')
      assert.equal(checkRelayIP(undefined, ip('23.55.1.242')), undefined)
    })
  })

  describe('ipOf', () => {
    it('reads the IP an address starts with, 4-in-6 as IPv4, and nothing from names or memory', () => {
      assert.deepEqual(ipOf(multiaddr('/ip4/1.2.3.4/tcp/1')), Uint8Array.from([1, 2, 3, 4]))
      assert.deepEqual(ipOf(multiaddr('/ip6/::ffff:1.2.3.4/tcp/1')), Uint8Array.from([1, 2, 3, 4]))
      assert.equal(ipOf(multiaddr('/ip6zone/eth0/ip6/fe80::1/tcp/1'))?.length, 16)
      assert.equal(ipOf(multiaddr('/dns4/example.org/tcp/1')), undefined)
      assert.equal(ipOf(multiaddr('/memory/a')), undefined)
    })
  })

  describe('relayableAddrs', () => {
    it('keeps addresses without an IP and reports each one it drops', () => {
      const dropped: string[] = []
      const kept = relayableAddrs(ip('23.55.1.242'), [
        multiaddr('/dns4/example.org/tcp/1'), multiaddr('/ip4/127.0.0.1/tcp/1'), multiaddr('/ip4/51.15.0.1/tcp/1')
      ], reason => { dropped.push(reason) })
      assert.deepEqual(kept.map(String), ['/dns4/example.org/tcp/1', '/ip4/51.15.0.1/tcp/1'])
      assert.deepEqual(dropped, ['loopback'])
    })
  })

  it('counts multicast, broadcast and documentation ranges as special, public unicast not', () => {
    assert.equal(isSpecialNetwork(ip('239.1.1.1')), true)
    assert.equal(isSpecialNetwork(ip('198.18.5.5')), true)
    assert.equal(isSpecialNetwork(ip('8.8.8.8')), false)
    assert.equal(isSpecialNetwork(ip('2606:4700::1111')), false)
  })
})
