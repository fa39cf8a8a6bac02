import assert from 'node:assert/strict'
import { parseIP } from '@chainsafe/is-ip/parse'
import { multiaddr } from '@multiformats/multiaddr'
import { checkRelayAddr, checkRelayIP, ipOf, isSpecialNetwork, relayableAddrs, relayPeerOf } from '../../src/protocol/relay.js'
import { lanNetworkOf, localNameKind } from '../../src/table/ip-limits.js'
import type { RelayPeer } from '../../src/protocol/relay.js'

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
      // a LAN address goes only to its own LAN (departs from geth, which checks "a LAN")
      ['192.168.0.1', '10.0.3.1', 'lan'],
      ['10.9.9.9', '192.168.0.1', 'lan'],
      ['172.16.0.1', '10.0.0.1', 'lan'],
      ['fd00::1', 'fe80::1', 'lan'],
      ['10.9.9.9', '10.0.3.1', undefined],
      ['172.31.0.1', '172.16.0.1', undefined],
      ['fd00::1', 'fc00::7', undefined],
      ['::ffff:192.168.0.1', '192.168.5.5', undefined],
      ['::1', '10.0.0.1', undefined],
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

    it('reads nothing from a name or memory address that looks like an IP, nor from a bare zone', () => {
      assert.equal(ipOf(multiaddr('/dns4/1.2.3.4/tcp/1')), undefined)
      assert.equal(ipOf(multiaddr('/memory/1.2.3.4')), undefined)
      assert.equal(ipOf(multiaddr('/ip6zone/eth0')), undefined)
    })

    it('keeps an IPv6 address whole unless all of ::ffff:0:0/96 says 4-in-6', () => {
      for (const text of ['2001:db8::ffff:102:304', '::ff:102:304', '::ff00:102:304', '::1']) {
        assert.equal(ipOf(multiaddr(`/ip6/${text}/tcp/1`))?.length, 16, text)
      }
    })
  })

  describe('relayPeerOf', () => {
    it('reads the IP of a connection and whether it is in-process', () => {
      assert.deepEqual(relayPeerOf(multiaddr('/ip4/23.55.1.242/tcp/1')), { ip: ip('23.55.1.242'), inProcess: false })
      assert.deepEqual(relayPeerOf(multiaddr('/memory/x')), { ip: undefined, inProcess: true })
      assert.deepEqual(relayPeerOf(multiaddr('/')), { ip: undefined, inProcess: false })
    })
  })

  describe('relayableAddrs', () => {
    it('keeps addresses without an IP and reports each one it drops', () => {
      const dropped: string[] = []
      const kept = relayableAddrs({ ip: ip('23.55.1.242'), inProcess: false }, [
        multiaddr('/dns4/example.org/tcp/1'), multiaddr('/ip4/127.0.0.1/tcp/1'), multiaddr('/ip4/51.15.0.1/tcp/1')
      ], reason => { dropped.push(reason) })
      assert.deepEqual(kept.map(String), ['/dns4/example.org/tcp/1', '/ip4/51.15.0.1/tcp/1'])
      assert.deepEqual(dropped, ['loopback'])
    })
  })

  describe('checkRelayAddr', () => {
    // built in each test, not when the file loads, so that a mutant of relayPeerOf
    // (switched on only while tests run) reaches them
    let publicHost: RelayPeer
    let lanHost: RelayPeer
    let loopbackHost: RelayPeer
    let inProcess: RelayPeer
    beforeEach(() => {
      publicHost = relayPeerOf(multiaddr('/ip4/23.55.1.242/tcp/1'))
      lanHost = relayPeerOf(multiaddr('/ip4/192.168.0.1/tcp/1'))
      loopbackHost = relayPeerOf(multiaddr('/ip4/127.0.0.1/tcp/1'))
      inProcess = relayPeerOf(multiaddr('/memory/x'))
    })

    it('passes memory addresses over in-process connections only', () => {
      assert.equal(inProcess.inProcess, true)
      assert.equal(checkRelayAddr(inProcess, multiaddr('/memory/y')), undefined)
      for (const host of [publicHost, lanHost, loopbackHost, relayPeerOf(multiaddr('/dns4/a.example/tcp/1'))]) {
        assert.equal(checkRelayAddr(host, multiaddr('/memory/y')), 'memory')
      }
    })

    it('judges names local by convention as loopback or LAN addresses', () => {
      assert.equal(checkRelayAddr(publicHost, multiaddr('/dns4/localhost/tcp/22')), 'loopback')
      assert.equal(checkRelayAddr(lanHost, multiaddr('/dns6/a.localhost/tcp/22')), 'loopback')
      assert.equal(checkRelayAddr(loopbackHost, multiaddr('/dns4/localhost/tcp/22')), undefined)
      assert.equal(checkRelayAddr(publicHost, multiaddr('/dns4/printer.local/tcp/1')), 'lan')
      assert.equal(checkRelayAddr(inProcess, multiaddr('/dns4/printer.local/tcp/1')), 'lan')
      assert.equal(checkRelayAddr(lanHost, multiaddr('/dns4/printer.local/tcp/1')), undefined)
      assert.equal(checkRelayAddr(publicHost, multiaddr('/dns4/boot.example.org/tcp/1')), undefined)
    })

    it('keeps relay and other addresses without an IP or a name', () => {
      const relayed = '/p2p/12D3KooWHFrmLWTTDD4NodngtRMEVYgxrsDdp4ZuHjrbwrKEgYXQ/p2p-circuit'
      assert.equal(checkRelayAddr(publicHost, multiaddr(relayed)), undefined)
      assert.equal(checkRelayAddr(publicHost, multiaddr('/p2p-circuit')), undefined)
    })

    it('judges IP addresses with checkRelayIP, the in-process host as a public one', () => {
      assert.equal(checkRelayAddr(inProcess, multiaddr('/ip4/127.0.0.1/tcp/1')), 'loopback')
      assert.equal(checkRelayAddr(lanHost, multiaddr('/ip4/10.0.0.1/tcp/1')), 'lan')
      assert.equal(checkRelayAddr(publicHost, multiaddr('/ip4/51.15.0.1/tcp/1')), undefined)
    })
  })

  it('names local DNS names by their suffix, case and trailing dot aside', () => {
    assert.equal(localNameKind('localhost'), 'loopback')
    assert.equal(localNameKind('API.LocalHost.'), 'loopback')
    for (const name of ['printer.local', 'db.internal', 'router.lan', 'nas.home.arpa', 'router']) {
      assert.equal(localNameKind(name), 'lan', name)
    }
    for (const name of ['example.org', 'localhost.example.org', 'local.example.com']) {
      assert.equal(localNameKind(name), undefined, name)
    }
  })

  it('names the private range of a LAN address, none for loopback or public ones', () => {
    assert.equal(lanNetworkOf(ip('10.1.2.3')), '10/8')
    assert.equal(lanNetworkOf(ip('172.31.255.1')), '172.16/12')
    assert.equal(lanNetworkOf(ip('172.32.0.1')), undefined)
    assert.equal(lanNetworkOf(ip('fd12::1')), 'fc00::/7')
    assert.equal(lanNetworkOf(ip('127.0.0.1')), undefined)
    assert.equal(lanNetworkOf(ip('8.8.8.8')), undefined)
  })

  it('counts multicast, broadcast and documentation ranges as special, public unicast not', () => {
    assert.equal(isSpecialNetwork(ip('239.1.1.1')), true)
    assert.equal(isSpecialNetwork(ip('198.18.5.5')), true)
    assert.equal(isSpecialNetwork(ip('8.8.8.8')), false)
    assert.equal(isSpecialNetwork(ip('2606:4700::1111')), false)
  })
})
