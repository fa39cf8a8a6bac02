import assert from 'node:assert/strict'
import { parseIP } from '@chainsafe/is-ip/parse'
import { multiaddr } from '@multiformats/multiaddr'
import { DistinctNetSet, isLAN, isLoopback, lanNetworkOf, netAddressKey, netAddressOf } from '../../src/table/ip-limits.js'
import type { NetAddress, NetLimits } from '../../src/table/ip-limits.js'

function ip (text: string): Uint8Array {
  const bytes = parseIP(text)
  assert.ok(bytes != null, `${text} parses`)
  return bytes
}

function net (text: string): NetAddress {
  const address = netAddressOf([multiaddr(text.includes(':') ? `/ip6/${text}/tcp/1` : `/ip4/${text}/tcp/1`)])
  assert.ok(address != null)
  return address
}

const limits: NetLimits = { ipv4Subnet: 24, ipv6Subnet: 48, limit: 2, allowLan: true }

describe('ip-limits', () => {
  describe('isLAN', () => {
    const lan = ['127.0.0.1', '127.255.0.9', '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255',
      '192.168.1.1', '169.254.3.4', '::1', 'fe80::1', 'febf::1', 'fc00::1', 'fd12:3456::1',
      '::ffff:127.0.0.1', '::ffff:10.1.2.3', '::ffff:192.168.0.1']
    const notLan = ['172.32.0.1', '172.15.255.255', '8.8.8.8', '51.15.0.1', '192.169.0.1', '11.0.0.1',
      '2001:db8::1', '2a01:4f8::1', 'fec0::1', '::ffff:8.8.8.8', '::2']

    for (const address of lan) {
      it(`counts ${address} as LAN`, () => {
        assert.equal(isLAN(ip(address)), true)
      })
    }
    for (const address of notLan) {
      it(`does not count ${address} as LAN`, () => {
        assert.equal(isLAN(ip(address)), false)
      })
    }
  })

  describe('isLoopback', () => {
    it('knows 127/8, ::1 and their 4-in-6 form, and nothing else', () => {
      assert.equal(isLoopback(ip('127.0.0.1')), true)
      assert.equal(isLoopback(ip('127.9.9.9')), true)
      assert.equal(isLoopback(ip('::1')), true)
      assert.equal(isLoopback(ip('::ffff:127.0.0.1')), true)
      assert.equal(isLoopback(ip('10.0.0.1')), false)
      assert.equal(isLoopback(ip('::2')), false)
    })
  })

  describe('netAddressOf', () => {
    it('refuses a node without multiaddrs', () => {
      assert.equal(netAddressOf([]), undefined)
    })

    it('takes the first IP component of the multiaddrs', () => {
      const address = netAddressOf([multiaddr('/dns4/example.com/tcp/1'), multiaddr('/ip4/51.15.1.2/tcp/1'), multiaddr('/ip4/8.8.8.8/tcp/1')])
      assert.deepEqual(address, { kind: 'ip', family: 4, bytes: ip('51.15.1.2') })
    })

    it('counts a 4-in-6 address as IPv4', () => {
      assert.deepEqual(net('::ffff:51.15.1.2'), { kind: 'ip', family: 4, bytes: ip('51.15.1.2') })
    })

    it('counts a DNS-only node under the last two labels of its name', () => {
      assert.deepEqual(netAddressOf([multiaddr('/dns4/a.b.Example.com/tcp/1')]), { kind: 'domain', domain: 'example.com' })
      assert.deepEqual(netAddressOf([multiaddr('/dnsaddr/bootstrap.example.org')]), { kind: 'domain', domain: 'example.org' })
    })

    it('marks memory-transport nodes', () => {
      assert.deepEqual(netAddressOf([multiaddr('/memory/node-1')]), { kind: 'memory' })
    })

    it('groups nodes with neither IP, DNS nor memory addresses by protocol', () => {
      assert.deepEqual(netAddressOf([multiaddr('/p2p-circuit')]), { kind: 'other', name: 'p2p-circuit' })
    })

    it('skips an empty multiaddr, and groups a node with nothing else as unknown', () => {
      assert.deepEqual(netAddressOf([multiaddr('/'), multiaddr('/ip4/51.15.1.2/tcp/1')]), { kind: 'ip', family: 4, bytes: ip('51.15.1.2') })
      assert.deepEqual(netAddressOf([multiaddr('/')]), { kind: 'other', name: 'unknown' })
    })

    it('reads a DNS name without its trailing dot', () => {
      assert.deepEqual(netAddressOf([multiaddr('/dns4/a.example.com./tcp/1')]), { kind: 'domain', domain: 'example.com' })
    })

    it('counts an IPv6 address as IPv6 unless all of ::ffff:0:0/96 says 4-in-6', () => {
      for (const text of ['2001:db8::ffff:102:304', '::ff:102:304', '::ff00:102:304', '::102:304']) {
        assert.equal((net(text) as { family: number }).family, 6, text)
      }
    })
  })

  describe('lanNetworkOf', () => {
    it('names the IPv4 range of a 4-in-6 address', () => {
      assert.equal(lanNetworkOf(ip('::ffff:192.168.1.1')), '192.168/16')
    })

    it('never matches an IPv6 address against an IPv4 range, nor the reverse', () => {
      assert.equal(lanNetworkOf(ip('a00::1')), undefined)
      assert.equal(lanNetworkOf(ip('254.128.0.1')), undefined)
    })
  })

  describe('netAddressKey', () => {
    it('is distinct for each kind and each address', () => {
      const keys = [
        netAddressKey(net('1.23.4.5')),
        netAddressKey(net('12.3.4.5')),
        netAddressKey({ kind: 'domain', domain: 'example.com' }),
        netAddressKey({ kind: 'other', name: 'example.com' }),
        netAddressKey({ kind: 'other', name: 'p2p-circuit' }),
        netAddressKey({ kind: 'memory' })
      ]
      assert.deepEqual(keys, ['ip4/1.23.4.5', 'ip4/12.3.4.5', 'dns/example.com', 'other/example.com', 'other/p2p-circuit', 'memory'])
    })
  })

  describe('DistinctNetSet', () => {
    it('allows limit nodes per IPv4 /24 and refuses one more', () => {
      const set = new DistinctNetSet(limits)
      assert.equal(set.add(net('51.15.1.1')), true)
      assert.equal(set.add(net('51.15.1.200')), true)
      assert.equal(set.add(net('51.15.1.3')), false)
      assert.equal(set.add(net('51.15.2.1')), true)
      assert.equal(set.count(net('51.15.1.99')), 2)
    })

    it('groups IPv6 addresses by /48', () => {
      const set = new DistinctNetSet(limits)
      assert.equal(set.add(net('2a01:4f8:1::1')), true)
      assert.equal(set.add(net('2a01:4f8:1:ffff::2')), true)
      assert.equal(set.add(net('2a01:4f8:1:1234::3')), false, 'a third in the same /48')
      assert.equal(set.add(net('2a01:4f8:2::1')), true, 'the next /48 is another subnet')
    })

    it('frees a slot on remove', () => {
      const set = new DistinctNetSet(limits)
      set.add(net('51.15.1.1'))
      set.add(net('51.15.1.2'))
      set.remove(net('51.15.1.1'))
      assert.equal(set.add(net('51.15.1.3')), true)
      assert.equal(set.count(net('51.15.1.3')), 2)
    })

    it('exempts LAN addresses when LAN is allowed', () => {
      const set = new DistinctNetSet(limits)
      for (let i = 1; i < 20; i++) {
        assert.equal(set.add(net(`127.0.0.${i}`)), true)
        assert.equal(set.add(net(`192.168.0.${i}`)), true)
      }
      assert.deepEqual(set.entries(), [])
    })

    it('limits LAN addresses when LAN is not allowed', () => {
      const set = new DistinctNetSet({ ...limits, allowLan: false })
      assert.equal(set.add(net('127.0.1.1')), true)
      assert.equal(set.add(net('127.0.1.2')), true)
      assert.equal(set.add(net('127.0.1.3')), false)
      assert.equal(set.add(net('127.0.2.1')), true)
    })

    it('limits DNS names by domain and never limits memory addresses', () => {
      const set = new DistinctNetSet(limits)
      const dns = (name: string): NetAddress => netAddressOf([multiaddr(`/dns4/${name}/tcp/1`)]) as NetAddress
      assert.equal(set.add(dns('a.evil.com')), true)
      assert.equal(set.add(dns('b.evil.com')), true)
      assert.equal(set.add(dns('c.evil.com')), false)
      for (let i = 0; i < 10; i++) {
        assert.equal(set.add({ kind: 'memory' }), true)
      }
    })

    it('names the group each kind of address is counted under, or none when exempt', () => {
      const lan = new DistinctNetSet(limits)
      const strict = new DistinctNetSet({ ...limits, allowLan: false })
      assert.equal(lan.groupOf(net('51.15.1.2')), 'ip4/33.f.1/24')
      assert.equal(lan.groupOf({ kind: 'domain', domain: 'example.com' }), 'dns/example.com')
      assert.equal(lan.groupOf({ kind: 'domain', domain: 'printer.local' }), undefined)
      assert.equal(strict.groupOf({ kind: 'domain', domain: 'printer.local' }), 'dns/printer.local')
      assert.equal(lan.groupOf({ kind: 'other', name: 'p2p-circuit' }), 'other/p2p-circuit')
      assert.equal(lan.groupOf({ kind: 'memory' }), undefined)
    })

    it('cuts a subnet prefix that is not a whole number of bytes inside its last byte', () => {
      const set = new DistinctNetSet({ ...limits, ipv4Subnet: 20, limit: 1 })
      assert.equal(set.add(net('51.15.16.1')), true)
      assert.equal(set.add(net('51.15.31.1')), false, '16-31 share a /20')
      assert.equal(set.add(net('51.15.32.1')), true)
      assert.equal(set.groupOf(net('51.15.31.1')), 'ip4/33.f.10/20')
    })
  })
})
